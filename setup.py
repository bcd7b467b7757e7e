"""Reuse & Diffuse kit: long videos from short-clip video latent-diffusion models (VidRD strategies)."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="reuse-diffuse-kit",
    version="0.1.0",
    description="Composable long-video sampling strategies (FNR, PNS, DSG) for any video LDM",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["samplers*", "models*", "benchmarks*"]),
    package_data={  # the bundled tiny VidRD and tiny Wan, and the classifiers that score them
        "models": [
            "weights/tiny-vidrd/manifest.json",  # sha256 of every file below: load_pipeline checks it
            "weights/tiny-vidrd/*/*.json",
            "weights/tiny-vidrd/*/*.safetensors",
            "weights/tiny-wan/*.json",  # model_index, generation defaults, manifest (load_flow checks it)
            "weights/tiny-wan/*/*.json",
            "weights/tiny-wan/*/*.safetensors",
        ],
        "benchmarks": ["weights/shapes-classifier/*", "weights/world-classifier/*"],  # with manifests
    },
    install_requires=[
        "torch>=2.1,<3",  # the CPU build 2.13.0 satisfies it: install that first on CPU machines
        "diffusers>=0.30",
        "numpy>=1.24",
        "scipy>=1.10",
        "einops>=0.7",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "threadpoolctl>=3.1",  # one BLAS thread per sweep point: results independent of the thread count
        "imageio>=2.30",  # streamed MP4/GIF output
        "imageio-ffmpeg>=0.5",  # ships its own ffmpeg binary inside the wheel
        "transformers>=4.45",  # diffusers' video pipelines (LongVideoPipeline's families) import it
        "accelerate>=0.30",  # diffusers loads Wan's transformer (modules kept in fp32) only with it
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "pytest-xdist>=3",  # README's test command runs the suite on every core (-n auto)
            "hypothesis>=6.80",
            "ruff>=0.5",
            "nbclient>=0.7",  # tests/test_notebooks.py executes notebooks/
            "nbformat>=5.7",
            "ipykernel>=6",  # its wheel installs the "python3" kernelspec the notebooks name
        ],
        "clip": ["transformers>=4.30"],  # CLIP text encoders of real Stable Diffusion checkpoints
    },
    entry_points={
        "console_scripts": [
            "vidrd=benchmarks.cli:main",
            "vidrd-train=models.train:main",
            "vidrd-compare=benchmarks.compare:main",
            "vidrd-perf=benchmarks.perf:main",
            "vidrd-sweep=benchmarks.sweep:main",
        ]
    },
)
