"""Grad-CAM (Selvaraju et al., 2017): where in a face crop the image model's fake logit comes from."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ml.transforms import to_tensor


def grad_cam(model: torch.nn.Module, face: np.ndarray, size: int) -> np.ndarray:
    """A (size, size) map in [0, 1] over the crop: channel activations of the last conv block,
    weighted by the gradient of the fake logit with respect to them."""
    x = to_tensor(face, size).to(next(model.parameters()).device)
    # The gradient is only needed from the logit back to the last activations (pool + head), so the
    # convolutional trunk runs without autograd: one forward pass, and a backward pass through the head.
    with torch.no_grad():
        acts = model.features(x)
    acts = acts.detach().requires_grad_(True)
    with torch.enable_grad():
        logit = model.classify_embedding(torch.flatten(model.pool(acts), 1))
        (grad,) = torch.autograd.grad(logit.sum(), acts)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1))[0].detach().float().cpu().numpy()
    if cam.max() > 0:
        cam = cam / cam.max()
    return cv2.resize(cam, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def overlay(face: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap blended over the face crop (RGB uint8), JET colours: red is where the model looked."""
    cam = cv2.resize(cam, (face.shape[1], face.shape[0]))
    heat = cv2.applyColorMap((cam * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return (face.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).astype(np.uint8)
