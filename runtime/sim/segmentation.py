"""Every pixel of the procedural road's frames labelled with its class, for free-space segmentation (issue 32). Pure
numpy (1.17 and later), deterministic by seed. The frames are the detection frames (obstacles.draw_frames: same
seed, same images as obstacles.sample_detection_frames, obstacles in nine frames in ten), so a segmentation
network sees the same kind of images as the steering and detection networks.

Classes (the index is the class id, uint8), in the terms of road.py (s: metres right of my lane's centre at the
pixel's centre; the right lane is mine):

    0 sky         the rows above the ground, 0 to RoadRenderer.first_ground - 1 (pixel centre above the horizon
                  row v_h + 1), where the renderer paints the sky; every row below is ground
    1 verge       ground that is mostly off the road surface (grass, earth beyond the paved shoulders)
    2 ego lane    ground that is mostly asphalt, its centre in my lane: |s| < LANE_WIDTH_M / 2, between the middle
                  of the centre line and the outer edge of my lane's right edge line
    3 other road  ground that is mostly asphalt outside my lane: the other lane and the 0.4 m paved shoulders
                  beyond both edge lines
    4 marking     ground that is mostly paint: the white edge lines and the dashed centre line (white or yellow)
    5 obstacle    a pixel an obstacle covers (ObstacleLayer's ids), whatever lies behind it, sky included: its
                  labelled parts and its clutter (a stop sign's post) alike; an obstacle's shadow keeps the class of
                  the ground it falls on

"Mostly" is the rule for ground pixels: the largest of the three shares of the pixel's footprint that the
renderer mixes its colour from (RoadRenderer.ground: verge (1 - road)(1 - lines)(1 - centre), asphalt
road (1 - lines)(1 - centre), paint lines (1 - centre) + centre), before texture, light, shadow and haze, which
change a pixel's colour but not what it shows; a tie (of measure zero) goes to the first of verge, asphalt,
paint. So a marking is labelled where its paint outweighs the rest of the pixel's colour, and a far line thinner
than half a pixel (beyond about 48 m at 320 x 180) blends into the road as it does in the image. Which lane an
asphalt pixel is in is decided at its centre (the boundary lies under the centre line, painted or in a gap
between dashes, and under the edge lines).

DRIVABLE: the classes that are free space (ego lane, other road, markings on the road). What the runtime reports
from a class map (each class's share, the free space's boundary) is runtime/postprocess.py's.
"""

from __future__ import annotations

import numpy as np

from . import obstacles, road

CLASSES = ("sky", "verge", "ego lane", "other road", "marking", "obstacle")
SKY, VERGE, EGO_LANE, OTHER_ROAD, MARKING, OBSTACLE = range(len(CLASSES))
DRIVABLE = (EGO_LANE, OTHER_ROAD, MARKING)


_BY_SHARE = np.array([VERGE, OTHER_ROAD, MARKING], np.uint8)  # the class of the largest share, lane aside


def label_frame(renderer: road.RoadRenderer, pose, travelled: float, ids=None) -> np.ndarray:
    """The class map (uint8, height x width) of the frame `renderer` draws from pose (d, psi, k, dk), `travelled`
    metres along the road; ids: the ObstacleLayer's id buffer after drawing (None: a frame without obstacles)."""
    s, _, road_share, lines, centre = renderer.ground(pose[0], pose[1], pose[2], pose[3], travelled)
    bare = (1.0 - lines) * (1.0 - centre)  # what the paint leaves of the ground
    shares = np.stack([(1.0 - road_share) * bare, road_share * bare, lines * (1.0 - centre) + centre])
    largest = np.argmax(shares, axis=0)
    ground = _BY_SHARE[largest]
    ground[(largest == 1) & (np.abs(s) < 0.5 * road.LANE_WIDTH_M)] = EGO_LANE
    mask = np.empty((renderer.height, renderer.width), np.uint8)
    mask[:renderer.first_ground] = SKY
    mask[renderer.first_ground:] = ground
    if ids is not None:
        mask[ids != -1] = OBSTACLE
    return mask


def sample_segmentation_frames(n: int, width: int = 320, height: int = 180, seed: int = 0,
                               views: str = "recovery"):
    """n independent road frames with obstacles, those of obstacles.sample_detection_frames for the same arguments:
    (frames uint8 BGR, n x height x width x 3; masks uint8 class ids, n x height x width)."""
    drawn = obstacles.draw_frames(n, width, height, seed, views)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    masks = np.empty((n, height, width), dtype=np.uint8)
    for i, (image, layer, pose, travelled) in enumerate(drawn):
        frames[i] = image
        masks[i] = label_frame(layer.renderer, pose, travelled, layer.ids)
    return frames, masks
