"""What the test folders share, imported normally (``from tests.support.ports import free_port``).

pytest puts the repository root on ``sys.path`` (``pythonpath`` in pyproject.toml), so this
package is found the same way from every test folder, by ``pytest`` and ``python -m pytest``.
The test folders themselves stay plain folders (pytest's default ``prepend`` import mode):

* :mod:`tests.support.sandbox_contract`: the conformance suite every sandbox runs;
* :mod:`tests.support.scripted_server`: a scripted OpenAI-compatible server on 127.0.0.1;
* :mod:`tests.support.docker_tier`: why the docker tier cannot run here, its image and compose.
"""
