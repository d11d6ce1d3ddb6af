"""Draw a result on its frame: the label and confidence, a steering gauge, a detector's boxes (each class in
its colour of a fixed palette, with its label, score and, when tracking, its id), or a segmentation's classes
blended in their colours with the free space's boundary, plus the FPS."""

from __future__ import annotations

import math

from .postprocess import detection_name

_GREEN, _WHITE, _BLACK, _AMBER = (80, 220, 80), (255, 255, 255), (0, 0, 0), (0, 190, 255)
# BGR, one per class index (in turn beyond ten): Tableau's ten, distinct on a road and to most colour-blind eyes
PALETTE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140),
           (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23))


def class_color(class_id: int):
    return PALETTE[int(class_id) % len(PALETTE)]


def text(cv2, img, string, org, scale, color):
    """Text with a dark drop shadow, readable on any background. (A thicker dark copy underneath does not
    line up: OpenCV advances each character by the stroke's thickness too, so it runs wider.)"""
    thickness = max(1, int(round(2 * scale)))
    shadow = (org[0] + thickness, org[1] + thickness)
    cv2.putText(img, string, shadow, cv2.FONT_HERSHEY_SIMPLEX, scale, _BLACK, thickness, cv2.LINE_AA)
    cv2.putText(img, string, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def draw(image, result, fps=None, truth=None):
    """Annotate `image` in place and return it."""
    import cv2

    h, w = image.shape[:2]
    scale = max(0.45, min(w, h) / 450.0)
    parts = [(name, r) for name, r in result.parts if r is not None]  # several networks: each one's, classes first
    for _, r in parts:  # a map made on a frame of another size (several networks, a source that changed): not drawn
        if getattr(r, "mask", None) is not None and r.get("units") != "input" and \
                getattr(r, "frame_size", (w, h)) == (w, h):
            _classes(cv2, image, r, scale)
    for _, r in parts:
        if r.get("detections") and r.get("units") != "input":  # boxes in this frame's pixels
            _boxes(cv2, image, r["detections"], scale)
        if r.get("steering") is not None:
            _steering_gauge(cv2, image, r["steering"], truth, scale)
    for i, (name, r) in enumerate(parts):
        line = r.text if name is None else "%s: %s" % (name, r.text)
        text(cv2, image, line, (int(10 * scale), int(30 * scale * (i + 1))), scale, _GREEN)
    if fps:
        label = "%.1f FPS" % fps
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        text(cv2, image, label, (w - tw - int(12 * scale), int(30 * scale)), scale, _WHITE)
    return image


MASK_WEIGHT = 0.45  # how much of a class's colour a segmented pixel takes


def _classes(cv2, image, result, scale):
    """The class map blended over the view it covers (each class in its palette colour, scaled up nearest), and
    the free space's boundary as a line."""
    import numpy as np

    x0, y0, x1, y1 = result.region
    coloured = np.asarray(PALETTE, np.uint8)[result.mask % len(PALETTE)]
    coloured = cv2.resize(coloured, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    image[y0:y1, x0:x1] = cv2.addWeighted(coloured, MASK_WEIGHT, image[y0:y1, x0:x1], 1.0 - MASK_WEIGHT, 0.0)
    columns = len(result["boundary"])
    points = np.array([[x0 + (c + 0.5) * (x1 - x0) / columns, y] for c, y in enumerate(result["boundary"])],
                      np.int32)
    cv2.polylines(image, [points], False, _AMBER, max(1, int(2 * scale)), cv2.LINE_AA)


def _steering_gauge(cv2, image, value, truth, scale):
    """A half dial at the bottom centre: the needle leans with the steering (full scale = +-1)."""
    h, w = image.shape[:2]
    radius = int(min(w, h) * 0.18)
    centre = (w // 2, h - int(12 * scale))
    cv2.ellipse(image, centre, (radius, radius), 0, 180, 360, _WHITE, max(1, int(2 * scale)), cv2.LINE_AA)
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        a = math.radians(tick * 90.0)
        p0 = (int(centre[0] + 0.85 * radius * math.sin(a)), int(centre[1] - 0.85 * radius * math.cos(a)))
        p1 = (int(centre[0] + radius * math.sin(a)), int(centre[1] - radius * math.cos(a)))
        cv2.line(image, p0, p1, _WHITE, 1, cv2.LINE_AA)
    needles = [(value, _GREEN)] + ([(truth, _AMBER)] if truth is not None else [])
    for v, color in needles:
        a = math.radians(max(-1.0, min(1.0, v)) * 90.0)
        tip = (int(centre[0] + 0.95 * radius * math.sin(a)), int(centre[1] - 0.95 * radius * math.cos(a)))
        cv2.line(image, centre, tip, color, max(2, int(3 * scale)), cv2.LINE_AA)


def _boxes(cv2, image, detections, scale):
    """Each detection's box in its class's colour, with 'label score' (or 'label #id score') on a filled tab
    above it (inside the box where the frame's top edge cuts it off); the best drawn last, on top."""
    thickness = max(1, int(round(2 * scale)))
    font = 0.8 * scale
    for d in reversed(detections):
        x0, y0, x1, y1 = (int(round(v)) for v in d["box"])
        color = class_color(d["class_id"])
        cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness)
        name = detection_name(d)
        (tw, th), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else y0
        cv2.rectangle(image, (x0, top), (x0 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(image, name, (x0 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font, _WHITE, 1, cv2.LINE_AA)
