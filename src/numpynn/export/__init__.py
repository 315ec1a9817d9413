"""Exports of a trained network to other formats.

- :mod:`~numpynn.export.onnx`: an ONNX file (standard operators, checked by
  ONNX Runtime in the tests), for ONNX Runtime in C++, C#, Java, JavaScript
  (browsers) and on phones. Needs ``pip install 'numpynn[onnx]'``.
"""
