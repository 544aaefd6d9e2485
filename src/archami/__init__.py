"""archami: build, boot-test, publish and release Arch Linux and Debian AMIs for Amazon EC2."""

__version__ = "0.1.0"
