"""Everything that talks to AWS: upload, bundle, register, replicate, expose, prune, lookup.

Only this package imports boto3; every other stage hands it on-disk artifacts (image.raw + manifest.json).
"""
