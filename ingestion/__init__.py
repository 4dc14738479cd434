"""dlt sources for the four systems, one package each, runnable without Dagster.

`python -m ingestion [SYSTEM ...]` loads them into the warehouse named by `CONCORD_WAREHOUSE`,
configured through dlt's conventions (`SOURCES__<SYSTEM>__...`, see `.dlt/example.secrets.toml`).
"""

import os

# No telemetry: nothing here may call out to the internet, and runs must not wait on it.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# Arrow tables get `_dlt_load_id` too, so every landed row (quarantine included) names its load.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
# Load files live a few seconds on local disk: compressing them costs more than it saves.
os.environ.setdefault("DATA_WRITER__DISABLE_COMPRESSION", "true")
# Merge stages each load in raw_<system>_staging; empty it afterwards instead of keeping a copy.
os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")
