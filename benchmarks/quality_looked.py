"""What a person saw in each of the quality suite's kept screenshots and previews, by the SHA-256 of the bytes
described (its first 16 hex digits, ``benchmarks.common.fingerprint``). A new run writes new images: until they are
looked at and described here, RESULTS.md says so. ``python -m benchmarks.quality_looked`` writes the section again
from results.json.
"""

from __future__ import annotations

LOOKED_AT: dict[str, tuple[str, str]] = {
    "quality_opening_skyline.png": (
        "d8ed64323c58b089",
        "Before: a pale blue haze covers the top half and the bottom third; the near objects (checkered box, "
        "striped box, blue sphere) show through it, the far ones (the checkered box behind, the small sphere) "
        "only as faint ghosts, and green streaks cross the frame's left and right. After: every object stands "
        "clear on the green ground (both checkered boxes, the striped box, both spheres, the yellow block), the "
        "sky pale behind; but the ground beyond the photos' reach is drawn in long needle-like streaks of green "
        "and white around the edge of the frame, with a pale green haze at the bottom and the sides: the low "
        "ring saw that ground only at grazing angles. That is the 0.33 outside the box.",
    ),
    "quality_opening_drone.png": (
        "2787726bd5d0aad7",
        "Before: the town sits in a bowl of white haze that covers the bottom third of the frame, its left edge "
        "and the upper corners. After: the whole ground disc is visible to its edge with the objects sharp in the "
        "middle, the sky pale blue behind; a few whitish streaks lie along the ground's rim. The scale bar (20 m) and "
        "north arrow show on both.",
    ),
    "quality_opening_object.png": (
        "f20ace74f5c1fd94",
        "Before: dozens of long coloured streaks radiate from the object and its backdrop ring across a black "
        "background, covering most of the frame. After: the backdrop ring and the ground inside it, the small "
        "object in the middle, with no streaks; the background is the learned sky's green-grey (the scene's "
        "surroundings as the photos saw them past the backdrop). The ring's outer edge is ragged.",
    ),
    "quality_opening_sceaux.png": (
        "e29e39ad2b42ed64",
        "The castle from above its photos' arc. Before: the facade and roofs sharp in the middle, a white flare of "
        "streaks over the left third, dark smeared ground with thin bright needles below, blue-grey blotches "
        "where the sky should be. After: the same facade, the sky behind it pale blue above, pale green at the "
        "left and a lawn green at the right (the shell's unseen directions filled from the seen ones: the run "
        "before the fill showed olive and yellow-green there); the white flare at the left is smaller but still "
        "there, and white and dark needles still cross the ground at the bottom and right. Not clear of haze: "
        "better, not clean.",
    ),
    "quality_sceaux_preview.png": (
        "a8023a1db935615d",
        "The held-out photo (middle) has a tree covering its left quarter and a person on the gravel; no training "
        "photo sees that tree, so neither render (before left, after right) has it, which is most of the 8.5 dB "
        "worst view. Both renders place the facade where the photo has it, windows and roofs readable; before "
        "shows a white blotch at the left edge and a smeared blue-grey ground, after a smaller pale smear at the "
        "left, a blurred bush at the left edge and a blue-grey smear along the bottom of the gravel.",
    ),
    "quality_opening_facade.png": (
        "b7304b708fdc7ff8",
        "The one-sided wall from above and to the side. Before: the wall, its windows, the bench and the bins on "
        "the grass strip, under a grey haze over the left half and a black void on the right, a thin dark streak "
        "at the far left. After: the same wall, a little cleaner at its left end, with short reddish streaks at "
        "both ends, in front of an even, calm beige-grey, faintly mauve at the top left: the walk's photos saw "
        "almost no sky (1.9 % of the shell's directions), and the shell's unseen directions are now filled from "
        "the few seen ones (the run before the fill showed the sky model's extrapolation there, pink, magenta "
        "and yellow-green).",
    ),
    "quality_opening_lund.png": (
        "c2e40917fc04e569",
        "Our viewer's opening view of the street walk, from above and behind it: neither is a usable first view. "
        "Before: a column of wall fragments down the middle inside blue smears and dark haze over the whole "
        "frame. After: the haze is gone and the sky shell (beige to pale blue) shows behind, but the street is "
        "still a loose cloud of dark and blue fragments, walls seen edge-on from a height no photo was taken at.",
    ),
    "quality_lund_preview.png": (
        "d4fbc9263891edb9",
        "The held-out photo (middle): the cobbled street between two rows of houses, blue sky with clouds, a "
        "walker. Both renders get the street's perspective and the house rows, blurred. Before (left): blue "
        "blotches smeared over the sky and the left houses, dark streaks across the right pavement. After "
        "(right): a cleaner sky with the clouds, but the left houses smeared into vertical streaks and the road "
        "a flat grey; the cobbles and the walker are gone in both (0.5 dB lower than before on this capture).",
    ),
    "quality_opening_sample.png": (
        "ae58dcac2baeb8bf",
        "The bundled drone orbit. Before: a white-blue fog covers the lower half of the frame and veils the "
        "objects; the far ground fades into it. After: the fog is gone; the objects (checkered and striped "
        "boxes, the stacked cylinder, spheres, the small pink pot) stand sharp on the green ground, the sky pale "
        "behind; the ground's near edge and rim are drawn as short whitish streaks.",
    ),
}


if __name__ == "__main__":
    from benchmarks.quality import report_again

    report_again()
