"""CloudFront Function sources shipped as package data (tested with Node in tests/)."""
