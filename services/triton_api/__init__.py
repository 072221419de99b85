"""NVIDIA Triton Inference Server as a PyTorch-side stack: the repository generated from the manifest, the launcher."""
