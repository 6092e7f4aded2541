"""tfds builders; importing this package registers them with tfds.

Prepare with `file_format='array_record'` and read without TensorFlow through
`tfds.data_source(name, data_dir=...)` or `builder.as_data_source()`.
"""
from animgen.datasets import bouncing_balls
from animgen.datasets import bouncing_mnist
from animgen.datasets import cinemagraph_folder
from animgen.datasets import clip_folders
from animgen.datasets import image2gif_patterns
from animgen.datasets import moving_mnist
from animgen.datasets import oneday_timelapse
from animgen.datasets import sky_timelapse
from animgen.datasets import synthetic_timelapse
from animgen.datasets import tgif
from animgen.datasets.bouncing_balls import BouncingBalls
from animgen.datasets.bouncing_mnist import BouncingMnist
from animgen.datasets.cinemagraph_folder import CinemagraphFolder
from animgen.datasets.clip_folders import ClipFolders
from animgen.datasets.image2gif_patterns import Image2gifPatterns
from animgen.datasets.moving_mnist import MovingMnist
from animgen.datasets.oneday_timelapse import OnedayTimelapse
from animgen.datasets.sky_timelapse import SkyTimelapse
from animgen.datasets.synthetic_timelapse import SyntheticTimelapse
from animgen.datasets.tgif import Tgif

# tfds name -> builder: the datasets animgen registers (input_pipeline checks names against it
# before asking tfds, whose lookup of an unknown name logs tracebacks of its own catalogue)
BUILDERS = {cls.name: cls for cls in (
    BouncingBalls, BouncingMnist, CinemagraphFolder, ClipFolders, Image2gifPatterns, MovingMnist,
    OnedayTimelapse, SkyTimelapse, SyntheticTimelapse, Tgif)}
