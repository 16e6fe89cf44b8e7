"""A Job's gate from its own pods: passed once they succeeded as often as it must complete,
before the Job controller (which batches pod updates for a second) writes `Complete`."""

from heliostat.drivers.kubernetes_rollout import completed_by_its_pods, rollout

UID = "6a1f0c3e-job"


def job(completions: int = 1, **spec) -> dict:
    return {"kind": "Job", "metadata": {"name": "migrate", "uid": UID},
            "spec": {"completions": completions, **spec}, "status": {}}


def pod(phase: str, uid: str = UID) -> dict:
    return {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": uid,
                                    "batch.kubernetes.io/job-name": "migrate"}},
            "status": {"phase": phase}}


def test_a_job_whose_pod_succeeded_is_done_before_its_controller_says_so():
    assert rollout(job())[0] == "starting"
    assert completed_by_its_pods(job(), [pod("Succeeded")])


def test_a_running_or_failed_pod_does_not_complete_it():
    assert not completed_by_its_pods(job(), [pod("Running")])
    assert not completed_by_its_pods(job(), [pod("Failed")])
    assert not completed_by_its_pods(job(), [])


def test_only_the_pods_of_this_very_job_count():
    """A Job replaced under the same name: its predecessor's pods are not its own."""
    assert not completed_by_its_pods(job(), [pod("Succeeded", uid="an-earlier-job")])


def test_it_needs_as_many_successes_as_completions():
    assert not completed_by_its_pods(job(completions=2), [pod("Succeeded"), pod("Running")])
    assert completed_by_its_pods(job(completions=2), [pod("Succeeded"), pod("Succeeded")])


def test_jobs_whose_controller_decides_more_than_counting_are_left_to_it():
    succeeded = [pod("Succeeded")]
    assert not completed_by_its_pods(job(suspend=True), succeeded)
    assert not completed_by_its_pods(job(completionMode="Indexed"), succeeded)
    assert not completed_by_its_pods(job(successPolicy={"rules": []}), succeeded)
    assert not completed_by_its_pods(job(completions=None, parallelism=2), succeeded)
    failed = job()
    failed["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    assert not completed_by_its_pods(failed, succeeded)
