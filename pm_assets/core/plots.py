"""Plots for MLflow artifacts and Dagster metadata (matplotlib, no screen needed)."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402


def predicted_vs_true(true_rul: np.ndarray, predicted_rul: np.ndarray, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(true_rul, predicted_rul, s=6, alpha=0.5)
    top = max(float(np.max(true_rul)), float(np.max(predicted_rul)), 1.0)
    ax.plot([0, top], [0, top], color="grey", linewidth=1)
    ax.set(xlabel="true RUL (hours)", ylabel="predicted RUL (hours)", title=title)
    return fig


def precision_recall(labels: np.ndarray, probability: np.ndarray, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    precision, recall, _ = precision_recall_curve(labels, probability)
    ax.plot(recall, precision)
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    return fig


def feature_importance(importance: dict[str, float], title: str, top: int = 20) -> plt.Figure:
    items = sorted(importance.items(), key=lambda kv: kv[1])[-top:]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(title=title)
    fig.tight_layout()
    return fig


def as_markdown(fig: plt.Figure) -> str:
    """An inline image for Dagster's markdown metadata."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![plot](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"
