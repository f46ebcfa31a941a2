"""Exports of a trained splat beyond PLY and SOG: glTF, SPZ and OGC 3D Tiles on the globe (``spaceport export``).

Modules, one idea each: ``frames`` (east-north-up, glTF's y-up, ECEF), ``sky_shell`` (the trained sky left out),
``spz`` (Niantic's SPZ, format version 2), ``glb`` (the binary glTF container), ``splat_gltf``
(``KHR_gaussian_splatting``, plain or SPZ-compressed), ``merge`` (many Gaussians as one), ``lod`` (the tile tree and
its coarser levels), ``tileset`` (``tileset.json``), ``writer`` (what a run publishes) and ``command``.
numpy only: the compress container runs them.
"""
