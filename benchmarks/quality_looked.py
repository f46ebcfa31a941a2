"""What a person saw in each of the quality suite's kept screenshots and previews, by the SHA-256 of the bytes
described (its first 16 hex digits, ``benchmarks.common.fingerprint``). A new run writes new images: until they are
looked at and described here, RESULTS.md says so. ``python -m benchmarks.quality_looked`` writes the section again
from results.json.
"""

from __future__ import annotations

LOOKED_AT: dict[str, tuple[str, str]] = {
    "quality_opening_skyline.png": (
        "e89e67e38d41e781",
        "Before: a pale blue dome of haze covers the top half and the left and bottom edges; the objects (checkered "
        "boxes, striped box, blue sphere) show through it faintly in a clear patch in the middle, the far ones "
        "lost. After: every object stands clear on the green ground (checkered boxes, striped box, both spheres, "
        "the yellow block), the sky light behind; but the ground beyond the photos' reach is drawn in long "
        "needle-like streaks of green and white around the edge of the frame, and a soft green haze sits at the "
        "bottom: the low ring saw that ground only at grazing angles. That is the 0.52 outside the box.",
    ),
    "quality_opening_drone.png": (
        "2787726bd5d0aad7",
        "Before: the town sits in a bowl of white haze that covers the bottom third of the frame, its left edge "
        "and the upper corners. After: the whole ground disc is visible to its edge with the objects sharp in the middle, "
        "the sky pale blue behind; a few whitish streaks lie along the ground's rim. The scale bar (20 m) and "
        "north arrow show on both.",
    ),
    "quality_opening_object.png": (
        "f20ace74f5c1fd94",
        "Before: dozens of long coloured streaks radiate from the object and its backdrop ring across a black "
        "background, covering most of the frame. After: the backdrop ring and the ground inside it, the small "
        "object in the middle, with no streaks; the background is the learned sky's green-grey (the scene's "
        "surroundings as the photos saw them past the backdrop). The ring's outer edge is ragged.",
    ),
}


if __name__ == "__main__":
    from benchmarks.quality import report_again

    report_again()
