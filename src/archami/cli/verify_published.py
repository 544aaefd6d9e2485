"""`archami verify --published RECORD`: filled in below."""
