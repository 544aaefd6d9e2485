"""archami's first-boot agent: configures an EC2 instance from its metadata.

Standard library only, Python 3.11+: it runs inside the image with the image's own python3, and against a
root directory in tests (`--root DIR --imds-url URL`). Imports are kept lean on purpose (the agent's own CPU
on a first boot must stay under 100 ms): no logging, http.client, dataclasses or subprocess at start-up.
"""
