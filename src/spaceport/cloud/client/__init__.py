"""The client of a deployed Spaceport (``spaceport cloud``): photos to a verified splat without typing an AWS request.

``Client(deployment).create_task(photos, options, progress)`` validates, archives and uploads the photos and returns
a ``Task``, whose ``wait_for_completion`` and ``download_assets`` follow the job to a scene that verifies against
the compress stage's manifest (pyodm's shape: a failure raises). Requests are signed with botocore's SigV4 from the
standard credential chain; presigned part uploads go through an HTTP client with retries.
"""
