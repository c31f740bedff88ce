# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Fonts and dictionary for the synthetic word generator (libfribidi0: OpenType features via Pillow's Raqm),
# Tesseract for the benchmark comparison.
DEBS   := wamerican fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-urw-base35 \
          fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine fonts-ebgaramond \
          fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-texgyre fonts-junicode fonts-cardo fonts-vollkorn \
          fonts-fanwood fonts-goudybookletter fonts-oldstandard fonts-sil-charis libfribidi0 tesseract-ocr
# Synth version 3's assets, for training only (`make synth-assets`; tests and the demo do not need them):
# 136 more Latin font packages, Debian's wallpapers as natural backgrounds, and the trdg wheel's Latin fonts.
SCENE_DEBS := gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers \
          fonts-adf-accanthis fonts-adf-baskervald fonts-adf-berenis fonts-adf-gillius fonts-adf-ikarius \
          fonts-adf-irianis fonts-adf-libris fonts-adf-mekanus fonts-adf-oldania fonts-adf-romande \
          fonts-adf-solothurn fonts-adf-switzera fonts-adf-tribun fonts-adf-universalis fonts-adf-verana \
          fonts-aenigma fonts-alee fonts-allerta fonts-apropal fonts-arapey fonts-averia-gwf \
          fonts-averia-sans-gwf fonts-averia-serif-gwf fonts-b612 fonts-bajaderka fonts-bebas-neue \
          fonts-beteckna fonts-blankenburg fonts-breip fonts-cabin fonts-cabinsketch fonts-campania \
          fonts-cantarell fonts-century-catalogue fonts-cherrybomb fonts-clear-sans fonts-cmu fonts-comfortaa \
          fonts-comic-neue fonts-courier-prime fonts-croscore fonts-dancingscript fonts-dkg-handwriting \
          fonts-dosis fonts-ecolier-court fonts-elstob fonts-engadget fonts-essays1743 fonts-eurofurence \
          fonts-f500 fonts-fantasque-sans fonts-femkeklaver fonts-firacode fonts-georgewilliams \
          fonts-gfs-artemisia fonts-gfs-baskerville fonts-gfs-bodoni-classic fonts-gfs-didot \
          fonts-gfs-didot-classic fonts-gfs-gazis fonts-gfs-neohellenic fonts-gfs-olga fonts-gfs-porson \
          fonts-gfs-solomos fonts-gfs-theokritos fonts-gnutypewriter fonts-go fonts-gotico-antiqua \
          fonts-hack-ttf fonts-hermit fonts-humor-sans fonts-inconsolata fonts-inter fonts-isabella \
          fonts-jetbrains-mono fonts-junction fonts-jura fonts-karla fonts-karmilla fonts-kaushanscript \
          fonts-klaudia-berenika fonts-klee fonts-kristi fonts-le-murmure fonts-league-mono \
          fonts-league-spartan fonts-leckerli-one fonts-lemonada fonts-levien-museum fonts-levien-typoscript \
          fonts-lindenhill fonts-linex fonts-lobster fonts-lobstertwo fonts-manrope fonts-millimetre \
          fonts-monofur fonts-mononoki fonts-mph-2b-damase fonts-national-park fonts-ocr-a fonts-ocr-b \
          fonts-oflb-euterpe fonts-okolaks fonts-opendin fonts-oxygen fonts-paratype fonts-play \
          fonts-prociono fonts-quattrocento fonts-quicksand fonts-radisnoir fonts-rampart fonts-reggae \
          fonts-roadgeek fonts-roboto-slab fonts-rocknroll fonts-routed-gothic fonts-rufscript \
          fonts-sil-andika fonts-sil-andikanewbasic fonts-sil-doulos fonts-sil-gentiumplus fonts-sixtyfour \
          fonts-solide-mirage fonts-sora fonts-staypuft fonts-stick fonts-summersby fonts-tiresias \
          fonts-tomsontalks fonts-tuffy fonts-ubuntu-title fonts-uralic fonts-yanone-kaffeesatz \
          fonts-yrsa-rasa
TRDG   := trdg==1.8.0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint system-deps synth-assets install clean bench default-model stage13 stage14 stage18 stage19 stage20 stage21 stage22 stage23

$(STAMP): setup.py pyproject.toml
	$(MAKE) system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tf,onnx,dask,dev]'
	touch $(STAMP)

install: $(STAMP)

# Installs the Debian packages only when one is missing (no network needed on a prepared machine).
apt_install = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
system-deps:
	@$(call apt_install,$(DEBS))

# The trdg fonts go where ocr_core.synth.fontset looks (<venv>/share/ocr-fonts); the wheel is only unpacked.
synth-assets: $(STAMP)
	@$(call apt_install,$(SCENE_DEBS))
	@test -d $(VENV)/share/ocr-fonts/trdg || { \
	  tmp=$$(mktemp -d) && $(PY) -m pip download -q --no-deps -d $$tmp '$(TRDG)' && \
	  mkdir -p $(VENV)/share/ocr-fonts/trdg && \
	  $(PY) -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2] + '/' + n.rsplit('/', 1)[1], 'wb').write(z.read(n)) for n in z.namelist() if n.startswith('trdg/fonts/latin/') and n.lower().endswith(('.ttf', '.otf'))]" $$tmp/*.whl $(VENV)/share/ocr-fonts/trdg && \
	  rm -rf $$tmp; }

demo: $(STAMP)
	$(VENV)/bin/ocr demo --workdir demo_out

test: $(STAMP)
	$(VENV)/bin/ruff check ocr_core pipelines tests bench setup.py
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) bench/build_dataset.py
	$(PY) bench/train_throughput.py
	$(PY) bench/predict_throughput.py

# `make default-model`: the shipped model's whole recipe (about 11 h on 2 cores), then the held-out-font and
# real-crop benchmarks and its int8 file. Stages 1-11 make the word model: 1-5 train on synthetic images only
# (synth versions 1-2); stages 6, 8 and 10 mix synth-v3/v4 images with the real train crops of $(REALWORDS),
# stages 7, 9 and 11 are short real-crop fine-tunes. Stages 14-18 grow it into the line model, stage 19
# distils PP-OCRv6 small into it, stages 20-21 add turned views of the real crops, stage 22 adds $ % # @ + to
# the charset: stage 22 ships (12-13 were an experiment); every stage from 6 on
# selects its best epoch on the dev crops. Each step
# leaves a stamp in $(RECIPE), so a stopped run starts again at the first unfinished step, and an interrupted
# `ocr train` resumes from its last epoch checkpoint (OUTPUT/_backup).
RECIPE    := recipe
OCR       := $(VENV)/bin/ocr
REALWORDS ?= ../shared/realwords
REAL_SETS := iiit5k_train ic15_train svt_train

SHIPPED := lines22
default-model: $(RECIPE)/heldout_accuracy.json $(RECIPE)/real_accuracy.json $(RECIPE)/shipped.int8
	@echo "model: $(RECIPE)/models/$(SHIPPED); results: $^"

# $(call synth,NAME,COUNT,SEED,FONTS,VERSION) and $(call build,NAME,VAL_FRACTION,SHARDS) as recipe steps
synth = $(OCR) synth --out $(RECIPE)/$(1) --count $(2) --seed $(3) --fonts $(4) --version $(5) --no-progress \
          --overwrite
build = $(OCR) build-dataset --input $(RECIPE)/synth$(1)/labels.tsv --output $(RECIPE)/ds$(1) \
          --val-fraction $(2) --shards $(3) --overwrite
# (a stage whose model is finished but whose stamp is missing is not trained again)
done  = test -f $(RECIPE)/models/$(1)/model.keras ||
train = $(call done,$(2)) $(OCR) train --config default --data $(RECIPE)/ds$(1) --output $(RECIPE)/models/$(2)
# stages 6-7: real train crops beside synthetic ones, best epoch chosen on the real dev crops
mix   = $(call done,$(1)) $(OCR) train --config default --val-data $(RECIPE)/dsrealdev --output $(RECIPE)/models/$(1)

$(RECIPE)/%.synth: $(STAMP)
	@mkdir -p $(RECIPE)
	$(call synth,synth$*,$(word 1,$(SYNTH_$*)),$(word 2,$(SYNTH_$*)),train,$(word 3,$(SYNTH_$*)))
	touch $@
# COUNT SEED VERSION (the shipped stages 1-2 ran on synth version 1: version 2 without old-style figures)
SYNTH_300k   := 300000 1 2
SYNTH_120k   := 120000 11 2
SYNTH_160k   := 160000 12 2
SYNTH_150k   := 150000 14 2
SYNTH_v3100k := 100000 31 3
SYNTH_v3b100k := 100000 32 3
SYNTH_v4100k := 100000 41 4
$(RECIPE)/v3100k.synth $(RECIPE)/v3b100k.synth $(RECIPE)/v4100k.synth: synth-assets

$(RECIPE)/%.ds: $(RECIPE)/%.synth
	$(call build,$*,$(word 1,$(BUILD_$*)),$(word 2,$(BUILD_$*)))
	touch $@
BUILD_300k   := 0.02 32
BUILD_120k   := 0.03 16
BUILD_160k   := 0.02 16
BUILD_150k   := 0.02 16
BUILD_v3100k := 0.01 16
BUILD_v3b100k := 0.01 16
BUILD_v4100k := 0.01 16

# The real crops: every train.tsv into one train-only dataset, every dev.tsv into one val-only one (punctuation
# and other characters outside the charset dropped from the labels, as the scene-text protocol ignores them).
$(RECIPE)/realtrain.ds: $(STAMP)
	$(OCR) build-dataset $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/train.tsv) \
	  --output $(RECIPE)/dsrealtrain --val-fraction 0 --shards 4 --oov drop --overwrite
	touch $@
$(RECIPE)/realdev.ds: $(STAMP)
	$(OCR) build-dataset $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/dev.tsv) \
	  --output $(RECIPE)/dsrealdev --split val --shards 2 --oov drop --overwrite
	touch $@

$(RECIPE)/e3.model: $(RECIPE)/300k.ds
	$(call train,300k,e3) --epochs 3
	touch $@
$(RECIPE)/ft.model: $(RECIPE)/e3.model $(RECIPE)/300k.ds
	$(call train,300k,ft) --init-from $(RECIPE)/models/e3 --epochs 8 --learning-rate 0.001 --seed 1
	touch $@
$(RECIPE)/ft2.model: $(RECIPE)/ft.model $(RECIPE)/120k.ds
	$(call train,120k,ft2) --init-from $(RECIPE)/models/ft --epochs 10 --learning-rate 0.0005 --seed 2
	touch $@
$(RECIPE)/ft3.model: $(RECIPE)/ft2.model $(RECIPE)/160k.ds
	$(call train,160k,ft3) --init-from $(RECIPE)/models/ft2 --epochs 9 --learning-rate 0.0003 --seed 3
	touch $@
$(RECIPE)/synth5.model: $(RECIPE)/ft3.model $(RECIPE)/150k.ds
	$(call train,150k,synth5) --init-from $(RECIPE)/models/ft3 --epochs 8 --learning-rate 0.0003 --seed 5
	touch $@
MIX_DEPS := $(RECIPE)/v3100k.ds $(RECIPE)/realtrain.ds $(RECIPE)/realdev.ds
$(RECIPE)/mix6.model: $(RECIPE)/synth5.model $(MIX_DEPS)
	$(call mix,mix6) --init-from $(RECIPE)/models/synth5 --data $(RECIPE)/dsv3100k --data $(RECIPE)/dsrealtrain \
	  --data-weights 2,1 $(MIX6_OPTS)
	touch $@
$(RECIPE)/real7.model: $(RECIPE)/mix6.model $(MIX_DEPS)
	$(call mix,real7) --init-from $(RECIPE)/models/mix6 --data $(RECIPE)/dsrealtrain $(REAL7_OPTS)
	touch $@
# $(call mix_then_real,MIX,REAL,FROM,SET): a stage MIX from model FROM on the first synth-v3 set, the synth set
# SET and the real crops (1:1:1), then REAL: real crops again. Stages 8-9 with a second 100k synth-v3 set;
# stages 10-11 run them again with the synth-v4 set (unlabelled punctuation) in its place.
define mix_then_real
$(RECIPE)/$(1).model: $(RECIPE)/$(3).model $(MIX_DEPS) $(RECIPE)/$(4).ds
	$$(call mix,$(1)) --init-from $(RECIPE)/models/$(3) --data $(RECIPE)/dsv3100k --data $(RECIPE)/ds$(4) \
	  --data $(RECIPE)/dsrealtrain --data-weights 1,1,1 $$(MIX8_OPTS)
	touch $$@
$(RECIPE)/$(2).model: $(RECIPE)/$(1).model $(MIX_DEPS)
	$$(call mix,$(2)) --init-from $(RECIPE)/models/$(1) --data $(RECIPE)/dsrealtrain $$(REAL9_OPTS)
	touch $$@
endef
$(eval $(call mix_then_real,mix8,real9,real7,v3b100k))
$(eval $(call mix_then_real,mix10,default,real9,v4100k))
MIX6_OPTS  := --learning-rate 0.0005 --epochs 8 --max-steps-per-epoch 250 --seed 1
REAL7_OPTS := --learning-rate 0.0001 --epochs 3 --max-steps-per-epoch 80 --seed 3
MIX8_OPTS  := --learning-rate 0.0003 --epochs 4 --max-steps-per-epoch 250 --seed 11
REAL9_OPTS := --learning-rate 0.0001 --epochs 3 --max-steps-per-epoch 80 --seed 13

# Stages 12-13: an experiment on top of stage 11, NOT shipped (dev crops 61.2 -> 61.8 pooled, McNemar p 0.29, SVT
# one crop worse; docs/model.md). Synth v5 sign crops checked by PP-OCRv6 (`ocr label --check-labels`: PP-OCRv4's
# teacher data filtering; 3,953 of 6,001 kept), mixed 1:1 with the real train crops, then real crops alone.
# `make stage13` reruns it; a later session continues from here (more checked images, distillation).
SYNTH_v520k := 20000 51 5
$(RECIPE)/v520k.synth: synth-assets
$(RECIPE)/v5checked.ds: $(RECIPE)/v520k.synth
	head -n 6001 $(RECIPE)/synthv520k/labels.tsv > $(RECIPE)/synthv520k/first6001.tsv
	$(OCR) label --input $(RECIPE)/synthv520k/first6001.tsv --output $(RECIPE)/v5checked/labels.tsv \
	  --check-labels --overwrite
	$(OCR) build-dataset --input $(RECIPE)/v5checked/labels.tsv --output $(RECIPE)/dsv5checked --val-fraction 0.01 \
	  --shards 8 --oov drop --overwrite
	touch $@
$(RECIPE)/mix12.model: $(RECIPE)/default.model $(RECIPE)/v5checked.ds $(MIX_DEPS)
	$(call mix,mix12) --init-from $(RECIPE)/models/default --data $(RECIPE)/dsv5checked --data $(RECIPE)/dsrealtrain \
	  --data-weights 1,1 --learning-rate 0.0003 --epochs 3 --max-steps-per-epoch 150 --seed 21
	touch $@
$(RECIPE)/real13.model: $(RECIPE)/mix12.model $(MIX_DEPS)
	$(call mix,real13) --init-from $(RECIPE)/models/mix12 --data $(RECIPE)/dsrealtrain --learning-rate 0.0001 \
	  --epochs 2 --max-steps-per-epoch 80 --seed 23
	touch $@
stage13: $(RECIPE)/real13.model

# Stage 14: the stage-11 word model grown into a line model (`configs/lines.yaml`: the same network with a dynamic
# input width and the space and punctuation added to the charset; `--init-from` keeps every trained weight and
# starts the new characters quiet), fine-tuned on synthetic text lines (`ocr synth --lines`), synth-v3 words, the
# teacher-checked v5 sign crops of stage 12 and the real train crops, 3:1:1:2, every dataset built under the
# line contract (`--for-config lines`); best epoch by CTC loss on the real dev crops (docs/lines.md, docs/model.md).
# Stages 14-21 ran on the line charset before stage 22 added $ % # @ + to configs/lines.yaml: they use
# $(LINES_V1), that config without those five marks.
LINES_V1 := $(RECIPE)/lines_v1.yaml
$(LINES_V1): configs/lines.yaml
	@mkdir -p $(RECIPE)
	sed -e 's/[$$]%#@+"$$/"/' $< > $@
LINES := $(OCR) build-dataset --for-config $(LINES_V1) --overwrite
$(RECIPE)/lines14.ds: synth-assets $(RECIPE)/v5checked.ds $(LINES_V1)
	$(call synth,synthlines24k,24000,61,train,4) --lines
	$(call synth,synthwords24k,24000,33,train,3)
	$(LINES) --input $(RECIPE)/synthlines24k/labels.tsv --output $(RECIPE)/dslines24k --val-fraction 0.02 --shards 8
	$(LINES) --input $(RECIPE)/synthwords24k/labels.tsv --output $(RECIPE)/dswords24k --val-fraction 0.01 --shards 8
	$(LINES) $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/train.tsv) --output $(RECIPE)/dslinesrealtrain \
	  --val-fraction 0 --shards 4 --oov drop
	$(LINES) $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/dev.tsv) --output $(RECIPE)/dslinesrealdev \
	  --split val --shards 2 --oov drop
	$(LINES) --input $(RECIPE)/v5checked/labels.tsv --output $(RECIPE)/dslinesv5checked --val-fraction 0.01 \
	  --shards 4 --oov drop
	touch $@
$(RECIPE)/lines14.model: $(RECIPE)/default.model $(RECIPE)/lines14.ds
	$(call done,lines14) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/default \
	  --data $(RECIPE)/dslines24k --data $(RECIPE)/dswords24k --data $(RECIPE)/dslinesrealtrain \
	  --data $(RECIPE)/dslinesv5checked --data-weights 3,1,2,1 --val-data $(RECIPE)/dslinesrealdev \
	  --learning-rate 0.0005 --epochs 40 --max-steps-per-epoch 100 --batch-size 32 --seed 14 \
	  --output $(RECIPE)/models/lines14
	touch $@
# Stages 15-18: real-crop-heavy fine-tunes of the line model at lower learning rates (as stages 7, 9 and 11 follow
# their mixes), best epoch on the real dev crops each time; stage 18 is the shipped model (docs/model.md).
$(RECIPE)/lines15.model: $(RECIPE)/lines14.model
	$(call done,lines15) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines14 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslines24k --data $(RECIPE)/dslinesv5checked \
	  --data-weights 3,1,1 --val-data $(RECIPE)/dslinesrealdev --learning-rate 0.0001 --epochs 5 \
	  --max-steps-per-epoch 80 --batch-size 32 --seed 15 --output $(RECIPE)/models/lines15
	touch $@
$(RECIPE)/lines16.model: $(RECIPE)/lines15.model
	$(call done,lines16) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines15 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslines24k --data $(RECIPE)/dslinesv5checked \
	  --data $(RECIPE)/dswords24k --data-weights 4,1,1,1 --val-data $(RECIPE)/dslinesrealdev \
	  --learning-rate 0.0001 --epochs 12 --max-steps-per-epoch 80 --batch-size 32 --seed 16 \
	  --output $(RECIPE)/models/lines16
	touch $@
$(RECIPE)/lines17.model: $(RECIPE)/lines16.model
	$(call done,lines17) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines16 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslines24k --data-weights 6,1 \
	  --val-data $(RECIPE)/dslinesrealdev --learning-rate 0.00005 --epochs 4 --max-steps-per-epoch 80 \
	  --batch-size 32 --seed 17 --output $(RECIPE)/models/lines17
	touch $@
$(RECIPE)/lines18.model: $(RECIPE)/lines17.model
	$(call done,lines18) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines17 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslines24k --data $(RECIPE)/dslinesv5checked \
	  --data $(RECIPE)/dswords24k --data-weights 4,1,1,1 --val-data $(RECIPE)/dslinesrealdev \
	  --learning-rate 0.0001 --epochs 20 --max-steps-per-epoch 80 --batch-size 32 --seed 18 \
	  --output $(RECIPE)/models/lines18
	touch $@
# Stage 19: stage 18's mix again from stage 18, 30 x 80 batches, with distillation from PP-OCRv6 small (the
# teacher reads every train record once, cached in ~/.cache/ocr/teacher; docs/train.md).
$(RECIPE)/lines19.model: $(RECIPE)/lines18.model
	$(call done,lines19) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines18 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslines24k --data $(RECIPE)/dslinesv5checked \
	  --data $(RECIPE)/dswords24k --data-weights 4,1,1,1 --val-data $(RECIPE)/dslinesrealdev \
	  --learning-rate 0.0001 --epochs 30 --max-steps-per-epoch 80 --batch-size 32 --seed 19 \
	  --teacher pp-ocrv6 --output $(RECIPE)/models/lines19
	touch $@
# Stage 20: stage 19's mix plus 4 turned, foreshortened, re-boxed views of every real train crop (`ocr augment`,
# docs/synth.md), 40 x 80 batches at 0.0002 from stage 19, without the teacher (more dev words, fewer lines).
$(RECIPE)/lines20.ds: $(RECIPE)/lines14.ds
	$(OCR) augment $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/train.tsv) --out $(RECIPE)/realviews \
	  --views 4 --seed 20 --overwrite
	$(LINES) --input $(RECIPE)/realviews/labels.tsv --output $(RECIPE)/dslinesrealviews --val-fraction 0 \
	  --shards 4 --oov drop
	touch $@
$(RECIPE)/lines20.model: $(RECIPE)/lines19.model $(RECIPE)/lines20.ds
	$(call done,lines20) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines19 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslinesrealviews --data $(RECIPE)/dslines24k \
	  --data $(RECIPE)/dslinesv5checked --data $(RECIPE)/dswords24k --data-weights 3,3,1,1,1 \
	  --val-data $(RECIPE)/dslinesrealdev --learning-rate 0.0002 --epochs 40 --max-steps-per-epoch 80 \
	  --batch-size 32 --seed 20 --output $(RECIPE)/models/lines20
	touch $@
# Stage 21: from stage 20, the lines' share back (3 : 2 : 2 : 1 : 1 real/views/lines/signs/words), 20 x 80
# batches at 0.0001, with the teacher (its readings of the views are cached too).
$(RECIPE)/lines21.model: $(RECIPE)/lines20.model
	$(call done,lines21) $(OCR) train --config $(LINES_V1) --init-from $(RECIPE)/models/lines20 \
	  --data $(RECIPE)/dslinesrealtrain --data $(RECIPE)/dslinesrealviews --data $(RECIPE)/dslines24k \
	  --data $(RECIPE)/dslinesv5checked --data $(RECIPE)/dswords24k --data-weights 3,2,2,1,1 \
	  --val-data $(RECIPE)/dslinesrealdev --learning-rate 0.0001 --epochs 20 --max-steps-per-epoch 80 \
	  --batch-size 32 --seed 21 --teacher pp-ocrv6 --output $(RECIPE)/models/lines21
	touch $@
# Stage 22: configs/lines.yaml's charset gains $ % # @ + (stage 21 read the $ of prices as S or 5). New
# synthetic words and signs (synth v5) and lines with those marks labelled (`ocr synth --for-config lines`),
# every dataset rebuilt under the new charset (the real crops now keep their $, %, # and @), the new marks
# started as copies of their lookalikes (S X H a t), 30 x 80 batches at 0.0003 from stage 21, with the teacher.
# $(call sets22,CONFIG,N,LABELS): stage 22's eight datasets built for config CONFIG as $(RECIPE)/dsN*, the
# synthetic lines and words from their LABELS file (stage 23: 48 px, the first 12,000 of each)
define sets22
	$(OCR) build-dataset --for-config $(1) --overwrite $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/train.tsv) \
	  --output $(RECIPE)/ds$(2)realtrain --val-fraction 0 --shards 4 --oov drop
	$(OCR) build-dataset --for-config $(1) --overwrite $(foreach s,$(REAL_SETS),--input $(REALWORDS)/$(s)/dev.tsv) \
	  --output $(RECIPE)/ds$(2)realdev --split val --shards 2 --oov drop
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/realviews/labels.tsv \
	  --output $(RECIPE)/ds$(2)realviews --val-fraction 0 --shards 4 --oov drop
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/v5checked/labels.tsv \
	  --output $(RECIPE)/ds$(2)v5checked --val-fraction 0.01 --shards 4 --oov drop
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/synthlines24k/$(3) \
	  --output $(RECIPE)/ds$(2)lines --val-fraction 0.02 --shards 8
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/synthwords24k/$(3) \
	  --output $(RECIPE)/ds$(2)words --val-fraction 0.01 --shards 8
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/synthmarkwords/labels.tsv \
	  --output $(RECIPE)/ds$(2)markwords --val-fraction 0.01 --shards 4
	$(OCR) build-dataset --for-config $(1) --overwrite --input $(RECIPE)/synthmarklines/labels.tsv \
	  --output $(RECIPE)/ds$(2)marklines --val-fraction 0.01 --shards 4
endef
# $(call mix22,N): stage 22's training mix of those datasets, 3 : 2 : 1 : 2 : 1 : 1 : 2, chosen on their dev crops
mix22 = --data $(RECIPE)/ds$(1)realtrain --data $(RECIPE)/ds$(1)realviews --data $(RECIPE)/ds$(1)lines \
  --data $(RECIPE)/ds$(1)marklines --data $(RECIPE)/ds$(1)v5checked --data $(RECIPE)/ds$(1)words \
  --data $(RECIPE)/ds$(1)markwords --data-weights 3,2,1,2,1,1,2 --val-data $(RECIPE)/ds$(1)realdev
$(RECIPE)/lines22.ds: $(RECIPE)/lines20.ds
	$(OCR) synth --out $(RECIPE)/synthmarkwords --count 16000 --seed 220 --version 5 --for-config lines \
	  --no-progress --overwrite
	$(OCR) synth --out $(RECIPE)/synthmarklines --count 8000 --seed 221 --version 3 --lines --for-config lines \
	  --no-progress --overwrite
	$(call sets22,lines,22,labels.tsv)
	touch $@
$(RECIPE)/lines22.model: $(RECIPE)/lines21.model $(RECIPE)/lines22.ds
	$(call done,lines22) $(OCR) train --config lines --init-from $(RECIPE)/models/lines21 \
	  $(call mix22,22) \
	  --learning-rate 0.0003 --epochs 30 --max-steps-per-epoch 80 --batch-size 32 --seed 23 \
	  --teacher pp-ocrv6 --output $(RECIPE)/models/lines22
	touch $@
# Stage 23 (a candidate, not shipped: docs/model.md): a 48-px input (configs/lines48.yaml: lines.yaml 1.5
# times as tall, pool 6 at 3 x 1, so every stage-22 weight keeps its shape and `--init-from` copies it),
# stage 22's eight datasets rebuilt at 48 px with its synthetic lines and words cut to their first 12,000
# (the same images: image i depends on seed and i), 55 x 80 batches at 0.0005 from stage 22 with the teacher
# (its targets computed once on the 48-px records): run c2 of 2026-12-08; c (2026-12-07) took all 24,000 of
# each and 60 x 80 batches.
$(RECIPE)/lines23.ds: $(RECIPE)/lines22.ds
	head -n 12000 $(RECIPE)/synthlines24k/labels.tsv > $(RECIPE)/synthlines24k/first12000.tsv
	head -n 12000 $(RECIPE)/synthwords24k/labels.tsv > $(RECIPE)/synthwords24k/first12000.tsv
	$(call sets22,lines48,23,first12000.tsv)
	touch $@
$(RECIPE)/lines23.model: $(RECIPE)/lines22.model $(RECIPE)/lines23.ds
	$(call done,lines23) $(OCR) train --config lines48 --init-from $(RECIPE)/models/lines22 \
	  $(call mix22,23) \
	  --learning-rate 0.0005 --epochs 55 --max-steps-per-epoch 80 --batch-size 32 --seed 27 \
	  --teacher pp-ocrv6 --output $(RECIPE)/models/lines23
	touch $@
stage14: $(RECIPE)/lines14.model
stage18: $(RECIPE)/lines18.model
stage19: $(RECIPE)/lines19.model
stage20: $(RECIPE)/lines20.model
stage21: $(RECIPE)/lines21.model
stage22: $(RECIPE)/lines22.model
stage23: $(RECIPE)/lines23.model

$(RECIPE)/heldout5k.synth: $(STAMP)
	@mkdir -p $(RECIPE)
	$(call synth,heldout5k,5000,7,heldout,2)
	touch $@
$(RECIPE)/heldout_accuracy.json: $(RECIPE)/$(SHIPPED).model $(RECIPE)/heldout5k.synth
	$(PY) bench/heldout_accuracy.py --images $(RECIPE)/heldout5k --n 5000 --model $(RECIPE)/models/$(SHIPPED) --out $@
$(RECIPE)/real_accuracy.json: $(RECIPE)/$(SHIPPED).model
	$(PY) bench/real_accuracy.py --realwords $(REALWORDS) --model $(RECIPE)/models/$(SHIPPED) --name shipped \
	  --peers none --out $@
# model.int8.onnx of the shipped bundle: int8 convolutions calibrated on 256 real train crops
$(RECIPE)/shipped.int8: $(RECIPE)/$(SHIPPED).model
	$(OCR) export $(RECIPE)/models/$(SHIPPED) --quantize $(foreach s,$(REAL_SETS),--calibration $(REALWORDS)/$(s)/train.tsv)
	touch $@

.SECONDARY:

clean:
	rm -rf $(VENV) demo_out build *.egg-info
