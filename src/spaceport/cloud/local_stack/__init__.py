"""A local stack of the cloud application on 127.0.0.1 that runs the real stages: see ``stack.py``.

``python -m spaceport.cloud.local_stack serve`` runs one until interrupted; ``make cloud-demo`` drives one with the
``spaceport cloud`` commands. It needs a source checkout (the functions, the state machine and the template are read
from it) and moto's server (``pip install -e '.[dev]'``).
"""
