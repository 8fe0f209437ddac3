"""Small web endpoints: the crew confirmation page behind the magic links."""
