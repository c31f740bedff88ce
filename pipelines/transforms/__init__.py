"""The Beam transforms of the jobs, one small module per concern: reading inputs (`read_inputs`, shared by
build and predict), label validation (`labels`), dedup (`dedup`), split and shard (`shards`), writing
(`write`), recognition (`recognise`), and the Dask-safe helpers they all use (`dask_safe`)."""
