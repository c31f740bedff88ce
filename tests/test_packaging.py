"""The wheel is complete: built from the sources and installed elsewhere, it loads a config by name, finds the
shipped model bundle and the report template, from a directory outside the source tree."""
import json
import os
import shutil
import subprocess
import zipfile

import pytest

from tests.conftest import PYTHON, REPO

BUILD_INPUTS = ("setup.py", "pyproject.toml", "ocr_core", "pipelines", "configs")

CHECK = """
import json, sys
import ocr_core
from ocr_core import bundle, config, report
cfg = config.load_config("small")
meta_cfg, charset, spec = bundle.read_bundle_meta(str(bundle.SHIPPED_MODEL))
report.environment().get_template(report.TEMPLATE)
print(json.dumps({"package": ocr_core.__file__, "config_dir": str(config.CONFIG_DIR), "small": cfg.name,
                  "configs": sorted(p.stem for p in config.CONFIG_DIR.glob("*.yaml")),
                  "shipped": str(bundle.SHIPPED_MODEL), "shipped_config": meta_cfg.name,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_installed_wheel_ships_configs_model_and_template(tmp_path):
    src = tmp_path / "src"  # a copy: the build's build/ and *.egg-info stay out of the checkout
    src.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    pip = [PYTHON, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("ocr-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"ocr_core/configs/small.yaml", "ocr_core/configs/seed.yaml", "ocr_core/templates/report.html.j2",
            "ocr_core/assets/default_model/model.keras"} <= set(names)
    assert not any(n.startswith("configs/") for n in names)  # no top-level `configs` package
    seed = zipfile.ZipFile(wheel).read("ocr_core/configs/seed.yaml")
    assert seed == (REPO / "configs" / "seed.yaml").read_bytes()

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([PYTHON, "-c", CHECK], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    installed = site / "ocr_core"
    assert got["package"] == str(installed / "__init__.py")  # the wheel's copy, not the checkout's
    assert got["config_dir"] == str(installed / "configs")
    assert got["small"] == "small"
    assert got["configs"] == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))  # every config ships
    assert {"default", "demo", "lines", "lines48", "seed", "small"} <= set(got["configs"])
    assert got["shipped"] == str(installed / "assets" / "default_model") and got["shipped_config"]
    assert not got["tensorflow"]


def test_every_folder_of_package_files_is_a_listed_package(monkeypatch):
    """A folder of data files left out of `packages` (templates/, the model's saved_model/) still ships, but
    setuptools >= 69 prints a 40-line BuildBackendWarning for each on every `pip install`."""
    from distutils.core import run_setup  # setuptools' copy (its .pth installs it; Python 3.12 has none)

    monkeypatch.chdir(REPO)  # setup.py finds packages relative to the working directory, as pip runs it
    packages = set(run_setup("setup.py", stop_after="init").packages)
    folders = {f.parent.relative_to(REPO) for top in ("ocr_core", "pipelines")
               for f in (REPO / top).rglob("*") if f.is_file() and "__pycache__" not in f.parts}
    missing = sorted(".".join(d.parts) for d in folders if ".".join(d.parts) not in packages)
    assert not missing, f"folders with files missing from setup.py's packages: {missing}"
    assert {"ocr_core.templates", "ocr_core.assets.default_model.saved_model.variables"} <= packages
