"""Everything that talks to AWS: upload, bundle, register, copy to every region, expose, sweep, prune, look up.

Only this package imports boto3; every other stage hands it on-disk artifacts (image.raw + manifest.json).

    publish.py     one build to many regions, resumable: preflight checks, then the steps below, the record
    context.py     what every step needs: the build, names, tags, settings, clients, state file
    source.py      the source region: snapshot (EBS direct or S3 import) or S3 bundle, then RegisterImage
    distribute.py  every region: CopyImage, launch permissions, deprecation, SSM parameter, sweep of leftovers
    upload.py      bytes to AWS: EBS direct blocks and checksums, S3 transfers, ImportSnapshot
    bundle.py      the instance-store bundle format, written and read back
    images.py      AMIs and snapshots: tags, RegisterImage parameters, find, wait, copy, deregister, AKIs
    state.py       the publish state file, and the crash points of the resume tests
    published.py   what is published: the latest AMI of a variant, pruning old releases
    clients.py     boto3 clients per region (or one emulator), and the region list of a publish
    errors.py      AWS failures as one-line ArchamiErrors; "not implemented by this endpoint"
"""
