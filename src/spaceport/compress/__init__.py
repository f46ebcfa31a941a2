"""3DGS PLY to PlayCanvas SOG version 2: ``encode_sog`` / ``encode_files`` / ``write_bundle`` and ``read_sog``.

Library modules: ``quantize`` (codebooks, SH palette, Morton order), ``sog`` (the encoder), ``decode`` (the
decoder), ``stage`` (the SageMaker Processing stage), ``evaluate`` and ``bench`` (render PSNR, benchmark).
Only numpy and Pillow are needed.
"""
