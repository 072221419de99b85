"""The frameworks themselves, in process: training and inference speed of the same networks in PyTorch and TensorFlow.

``python -m benchmarks.frameworks [--quick] [--device cpu|cuda] [--out DIR]`` (``make frameworks``):

* :mod:`~benchmarks.frameworks.__main__` -- the command: plan, one worker per framework, combine, report;
* :mod:`~benchmarks.frameworks.worker` -- one framework's measurements in its own process;
* :mod:`~benchmarks.frameworks.article_torch` / :mod:`~benchmarks.frameworks.article_keras` -- the
  article's programs (SimpleNN, the 784→128→10 classifier, the DynamicRNN) and the digits CNN, trained
  as a PyTorch loop and as Keras ``fit`` from the same weights on the same batches (:mod:`.data`);
* :mod:`~benchmarks.frameworks.inference_torch`, :mod:`.inference_ort`, :mod:`.inference_tf` -- the
  in-process runtimes; :mod:`.timing` times them, :mod:`.parity` holds them to one reference;
* :mod:`~benchmarks.frameworks.claims` -- the article's claims judged by the figures; :mod:`.report`
  and :mod:`.plots` write ``report.md``, ``report.html`` and the PNGs.

torch and TensorFlow never share a process: only the worker imports a framework, and only one.
"""
