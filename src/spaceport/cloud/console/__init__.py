"""``spaceport cloud console``: a job console in the browser, served on 127.0.0.1.

A small static page (``static/``: no build step) lists the deployment's jobs with their status, stage, live
progress, queue position and cost; creates a job from a dropped folder or zip through the client's own upload code
(progress, resume); cancels, retries, and opens a finished scene in our viewer. The local server (``server.py``)
signs every call to the jobs API with the command's credentials: none ever reaches the browser.
"""
