"""The sfm stage: photos to a COLMAP model (SageMaker Processing contract). See ``stage.run_sfm``."""
