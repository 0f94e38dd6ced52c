"""The run folder in one place (docs/RUN_FOLDER.md): its layout (`schema.py`), which folders may be written
(`folders.py`, torch-free), the writer with its status and resume (`run_dir.py`), a fold's checkpoint
(`checkpoint.py`), the vectors a run saves (`vectors_out.py`), and the reader the report uses (`reader.py`)."""
