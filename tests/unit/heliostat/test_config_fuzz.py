"""Generated documents: each is accepted (and then renders on its profile) or rejected
with `file:line: key.path: message` lines — never a traceback, never a catalog error."""

import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliostat.config import config_from_document
from heliostat.model import build_model
from heliostat.problems import InvalidInput
from heliostat.render import render_manifests, yaml_text
from heliostat.yaml_source import load_yaml_text
from tests.unit.heliostat.generated_configs import mutated_documents

PROBLEM = re.compile(r"^fuzz\.yaml:\d+: (\S+: )?\S.*$")


def check(text: str) -> None:
    try:
        document = load_yaml_text(text, "fuzz.yaml")
        config = config_from_document(document)
    except InvalidInput as exc:
        assert exc.problems
        for problem in exc.problems:
            assert PROBLEM.match(str(problem)), str(problem)
        return
    manifests = render_manifests(build_model(config))  # on the profile the document chose
    assert manifests
    if yaml.__with_libyaml__:  # the files do not depend on which emitter wrote them
        for manifest in manifests:
            assert (yaml_text(manifest.body, yaml.CSafeDumper)
                    == yaml_text(manifest.body, yaml.SafeDumper)), manifest.filename


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_generated_configs_are_accepted_and_render_or_are_rejected_clearly(document):
    check(yaml.safe_dump(document, sort_keys=False))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:{}[]-,'\"#&*!|> \n\t0")), max_size=40))
def test_arbitrary_text_is_rejected_clearly(text):
    check("apiVersion: heliostat/v1\nname: acme\n" + text)
