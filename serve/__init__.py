"""genadapt.serve: the HTTP segmentation service (FastAPI + uvicorn)."""
