"""tfds builders; importing this package registers them with tfds.

Prepare with `file_format='array_record'` and read without TensorFlow through
`tfds.data_source(name, data_dir=...)` or `builder.as_data_source()`.
"""
from animgen.datasets import oneday_timelapse
from animgen.datasets import sky_timelapse
from animgen.datasets import synthetic_timelapse
from animgen.datasets.oneday_timelapse import OnedayTimelapse
from animgen.datasets.sky_timelapse import SkyTimelapse
from animgen.datasets.synthetic_timelapse import SyntheticTimelapse
