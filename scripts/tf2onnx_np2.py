#!/usr/bin/env python3
"""Run tf2onnx's converter under numpy 2 (set-up time only; see docs/detector_options.md).

tf2onnx 1.17 still calls ``numpy.product``, an alias numpy 2 removed; this restores it
and hands every argument to ``python -m tf2onnx.convert``.
"""
import runpy
import sys

import numpy

numpy.product = numpy.prod
sys.argv = ["tf2onnx.convert"] + sys.argv[1:]
runpy.run_module("tf2onnx.convert", run_name="__main__")
