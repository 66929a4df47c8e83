"""Certificate issuers driven through their real client libraries."""
