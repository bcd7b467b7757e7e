"""Training data: the synthetic "moving shapes" world and the paper's three data strategies
(docs/DESIGN.md §7).

from models.data import MovingShapes, ShapesConfig         # captioned synthetic clips, generated on the fly
from models.data import ZoomPan                             # still image -> pseudo-video (zoom and pan)
from models.data import LabelCaptioner                      # class label -> caption (templates)
from models.data import shot_boundaries, segment_and_caption  # long video -> captioned segments
"""

from .captions import LabelCaptioner, label_text
from .pseudo_video import ZoomPan
from .segmentation import frame_differences, segment_and_caption, shot_boundaries
from .shapes import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    SHAPES,
    MovingShapes,
    ShapesConfig,
    ShapeSpec,
    caption,
    collate,
    drawn_centres,
    frames_to_tensor,
    labels,
    render,
    render_still,
    sample_spec,
    still_caption,
    tensor_to_frames,
    trajectory,
)

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "DIRECTIONS",
    "SHAPES",
    "LabelCaptioner",
    "MovingShapes",
    "ShapeSpec",
    "ShapesConfig",
    "ZoomPan",
    "caption",
    "collate",
    "drawn_centres",
    "frame_differences",
    "frames_to_tensor",
    "label_text",
    "labels",
    "render",
    "render_still",
    "sample_spec",
    "segment_and_caption",
    "shot_boundaries",
    "still_caption",
    "tensor_to_frames",
    "trajectory",
]
