"""Ingestion: the landing files checked against the input contract, invalid rows quarantined with a
reason (assets `customers`, `<table>_files` and `<table>`).

- `contract`: one declared schema per landing table, the columns that never pass (PII);
- `read`: reading a table's landing files and validating them, file by file, then across files;
- `validate`: the row and cross-row rules that accept or quarantine each row;
- `landing`: which landing files are new, by content hash (one partition per distinct content);
- `quality`: the rules behind the input tables' checks;
- `buckets`: event tables validated into buckets by customer, for stages that go bucket by bucket.
"""
