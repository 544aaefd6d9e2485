"""Releases: release ids, release records (releases/<id>.json), changelogs, the release site, the pipeline.

    BuildResult + TestReport + PublishRecord --release--> ReleaseRecord --site--> HTML / JSON / Markdown
"""
