"""The planner: dependency waves, and create / update / replace / delete / unchanged per object."""

import hashlib
import json
import re

import pytest

from heliostat.driver import DesiredObject, LiveObject, spec_hash
from heliostat.plan import PlanError, changed_fields, plan, service_waves


def desired(key, service=None, depends_on=(), **spec):
    """An object of `service`, by default its key less a replica number (`kafka-0`: kafka)."""
    return DesiredObject(key, service or re.sub(r"-\d+$", "", key), spec, tuple(depends_on))


def applied(obj, *, wave=1, revision=1, spec=None, known=True):
    """The live copy of `obj` as a driver would observe it after applying it."""
    spec = obj.spec if spec is None else spec
    return LiveObject(obj.key, obj.service, spec_hash(spec), revision, "healthy", wave,
                      spec if known else None)


def test_spec_hash_is_the_sha256_of_canonical_json():
    expected = hashlib.sha256('{"a":[1,"é"],"b":{"c":true}}'.encode()).hexdigest()
    assert spec_hash({"b": {"c": True}, "a": [1, "é"]}) == expected
    assert desired("x-0", a=[1, "é"], b={"c": True}).spec_hash == expected
    assert spec_hash({"a": 1}) != spec_hash({"a": 1.0}) != spec_hash({"a": True})


def test_services_are_layered_into_waves_by_their_dependencies():
    objects = [
        desired("postgres-0"), desired("kafka-0"), desired("kafka-1"),
        desired("event-api", depends_on=["kafka", "postgres"]),
        desired("router-0", depends_on=["kafka", "postgres"]),
        desired("webhook", depends_on=["router"]),
    ]
    assert service_waves(objects) == {"postgres": 1, "kafka": 1, "event-api": 2,
                                      "router": 2, "webhook": 3}
    result = plan(objects, {})
    assert [[s.key for s in wave] for wave in result.waves] == [
        ["kafka-0", "kafka-1", "postgres-0"], ["event-api", "router-0"], ["webhook"]]
    assert all(step.wave == number
               for number, wave in enumerate(result.waves, start=1) for step in wave)


def test_a_dependency_cycle_is_named():
    objects = [desired("a", depends_on=["b"]), desired("b", depends_on=["c"]),
               desired("c", depends_on=["a"]), desired("d")]
    with pytest.raises(PlanError, match=r"cycle: a -> b -> c -> a$"):
        plan(objects, {})
    with pytest.raises(PlanError, match=r"cycle: e -> e$"):
        plan([desired("e", depends_on=["e"])], {})


def test_an_unknown_dependency_and_a_key_desired_twice_are_errors():
    with pytest.raises(PlanError, match="event-api depends on kafka, which no desired object"):
        plan([desired("event-api", depends_on=["kafka"])], {})
    with pytest.raises(PlanError, match="objects desired twice: x-0"):
        plan([desired("x-0", image="a"), desired("x-0", image="b")], {})


def test_nothing_live_creates_everything():
    result = plan([desired("postgres-0"), desired("event-api", depends_on=["postgres"])], {})
    assert [s.action for s in result.steps] == ["create", "create"]
    assert result.has_changes
    assert result.counts() == {"create": 2, "update": 0, "replace": 0, "delete": 0,
                               "unchanged": 0}


def test_an_applied_spec_is_unchanged_and_a_plan_of_those_has_no_changes():
    objects = [desired("postgres-0", image="pg@sha256:1"), desired("redis-0", image="r")]
    live = {o.key: applied(o, known=False) for o in objects}
    result = plan(objects, live)
    assert [s.action for s in result.steps] == ["unchanged", "unchanged"]
    assert not result.has_changes
    assert result.text() == "No changes: 2 objects unchanged.\n"


def test_an_update_lists_the_changed_fields_as_dotted_paths():
    old = {"image": "api:1", "env": {"A": "1", "GONE": "x"}, "ports": [{"port": 80}],
           "command": ["run"], "replicas": 1, "labels": {"tier": "web"}}
    new = {"image": "api:2", "env": {"A": "2", "NEW": "y"}, "ports": [{"port": 8080}],
           "command": ["run", "--fast"], "replicas": True, "labels": {"tier": "web"}}
    obj = desired("event-api", **new)
    [step] = plan([obj], {"event-api": applied(obj, spec=old)}).steps
    assert step.action == "update"
    assert step.changed == ("command", "env.A", "env.GONE", "env.NEW", "image",
                            "ports[0].port", "replicas")
    assert step.live.spec == old and step.desired is obj


def test_a_change_to_an_immutable_field_is_a_replace():
    old = {"image": "kafka:1", "volumes": [{"name": "data", "size": "10Gi"}]}
    resized = desired("kafka-0", image="kafka:1", volumes=[{"name": "data", "size": "20Gi"}])
    upgraded = desired("kafka-1", image="kafka:2", volumes=old["volumes"])
    live = {"kafka-0": applied(resized, spec=old), "kafka-1": applied(upgraded, spec=old)}
    steps = {s.key: s for s in plan([resized, upgraded], live, immutable={"volumes"}).steps}
    assert (steps["kafka-0"].action, steps["kafka-0"].changed) == ("replace",
                                                                   ("volumes[0].size",))
    assert (steps["kafka-1"].action, steps["kafka-1"].changed) == ("update", ("image",))
    # Without the driver declaring it immutable, the same change is an update.
    [step] = plan([resized], {"kafka-0": live["kafka-0"]}).steps
    assert step.action == "update"


def test_a_changed_object_whose_applied_spec_is_unknown_is_an_update_of_unknown_fields():
    obj = desired("postgres-0", image="pg:2", volumes=["data"])
    live = {"postgres-0": applied(obj, spec={"image": "pg:1"}, known=False)}
    [step] = plan([obj], live, immutable={"volumes"}).steps
    assert (step.action, step.changed) == ("update", ("*",))


def test_live_objects_no_longer_desired_are_deleted_last_latest_wave_first():
    keep = desired("postgres-0")
    live = {
        "postgres-0": applied(keep, wave=1),
        "old-cache-0": LiveObject("old-cache-0", "old-cache", "h1", 1, "healthy", 1),
        "old-worker-1": LiveObject("old-worker-1", "old-worker", "h2", 1, "healthy", 3),
        "old-worker-0": LiveObject("old-worker-0", "old-worker", "h2", 1, "healthy", 3),
        "old-network": LiveObject("old-network", "platform", "h3", 1, "unknown", 0),
        "old-api": LiveObject("old-api", "old-api", "h4", 2, "unhealthy", 2),
    }
    result = plan([keep], live)
    assert [(s.action, s.key) for s in result.steps] == [
        ("unchanged", "postgres-0"), ("delete", "old-worker-0"), ("delete", "old-worker-1"),
        ("delete", "old-api"), ("delete", "old-cache-0"), ("delete", "old-network")]
    assert all(s.desired is None and s.live is live[s.key] for s in result.deletions)


def test_desiring_nothing_deletes_everything():
    live = {"a-0": LiveObject("a-0", "a", "h", 3, "healthy", 1),
            "b-0": LiveObject("b-0", "b", "h", 3, "healthy", 2)}
    result = plan([], live)
    assert result.waves == ()
    assert [s.key for s in result.steps] == ["b-0", "a-0"]
    assert result.text() == ("deletions\n"
                             "    - delete  b-0\n"
                             "    - delete  a-0\n"
                             "Plan: 0 to create, 0 to update, 0 to replace, 2 to delete; "
                             "0 unchanged.\n")


def mixed_plan():
    kafka_spec = {"image": "kafka:1", "volumes": [{"size": "10Gi"}]}
    api_spec = {"image": "api:1", "env": {"KAFKA_BOOTSTRAP": "kafka-0:9092"}}
    objects = [
        desired("postgres-0", image="pg:1"),
        desired("redis-0", image="redis:7"),
        desired("kafka-0", image="kafka:1", volumes=[{"size": "20Gi"}]),
        desired("event-api", depends_on=["kafka", "postgres"], image="api:2",
                env={"KAFKA_BOOTSTRAP": "kafka-0:9093"}),
        desired("router-0", depends_on=["kafka"], image="router:1"),
    ]
    by_key = {o.key: o for o in objects}
    live = {
        "postgres-0": applied(by_key["postgres-0"]),
        "kafka-0": applied(by_key["kafka-0"], spec=kafka_spec),
        "event-api": applied(by_key["event-api"], wave=2, spec=api_spec),
        "router-0": applied(by_key["router-0"], wave=2),
        "old-worker-0": LiveObject("old-worker-0", "old-worker", "h", 1, "healthy", 3),
        "old-cache-0": LiveObject("old-cache-0", "old-cache", "h", 1, "healthy", 1),
    }
    return plan(objects, live, immutable=frozenset({"volumes"}))


def test_the_text_form_shows_each_wave_change_and_a_summary():
    assert mixed_plan().text() == """\
wave 1: kafka, postgres, redis
  -/+ replace kafka-0  (volumes[0].size)
    + create  redis-0
      1 unchanged
wave 2: event-api, router
    ~ update  event-api  (env.KAFKA_BOOTSTRAP, image)
      1 unchanged
deletions
    - delete  old-worker-0
    - delete  old-cache-0
Plan: 1 to create, 1 to update, 1 to replace, 2 to delete; 2 unchanged.
"""


def test_the_json_form_has_every_step_and_the_summary():
    result = mixed_plan()
    document = json.loads(json.dumps(result.to_json()))
    assert document["changes"] is True
    assert document["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 2,
                                   "unchanged": 2}
    assert [(w["wave"], w["services"]) for w in document["waves"]] == [
        (1, ["kafka", "postgres", "redis"]), (2, ["event-api", "router"])]
    api = document["waves"][1]["steps"][0]
    desired_api = result.waves[1][0].desired
    assert api == {"action": "update", "key": "event-api", "service": "event-api", "wave": 2,
                   "changed": ["env.KAFKA_BOOTSTRAP", "image"],
                   "desired_hash": desired_api.spec_hash,
                   "live_hash": spec_hash({"image": "api:1",
                                           "env": {"KAFKA_BOOTSTRAP": "kafka-0:9092"}}),
                   "live_revision": 1}
    assert [(d["key"], d["desired_hash"]) for d in document["deletions"]] == [
        ("old-worker-0", None), ("old-cache-0", None)]
    assert sum(len(w["steps"]) for w in document["waves"]) == 5


def test_planning_is_deterministic_whatever_the_input_order():
    objects = [desired("b-0"), desired("a-0"), desired("c-0", depends_on=["a", "b"])]
    live = {"z-0": LiveObject("z-0", "z", "h", 1, "healthy", 1),
            "y-0": LiveObject("y-0", "y", "h", 1, "healthy", 1)}
    first = plan(objects, live)
    second = plan(reversed(objects), dict(reversed(list(live.items()))))
    assert first == second
    assert first.text() == second.text()


def test_changed_fields_reports_whole_values_where_structure_differs():
    assert changed_fields({"a": [1, 2]}, {"a": [1, 2, 3]}) == ["a"]
    assert changed_fields({"a": {"b": 1}}, {"a": "flat"}) == ["a"]
    assert changed_fields({"a": [{"b": 1}, {"b": 2}]}, {"a": [{"b": 1}, {"b": 3}]}) == ["a[1].b"]
    assert changed_fields({"a": 1}, {"a": 1}) == []
    assert changed_fields([1], "x") == ["*"]
