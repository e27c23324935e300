"""Who may upload, run, read and re-identify. Views and API views call these, never guardian."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from datasets.models import Dataset, Job
from governance import permissions as governance_perms
from governance.models import DataFlow, User


def _party_sides(user: User, flow: DataFlow) -> set[str]:
    """Return which sides of the flow ("source", "destination") the person acts for."""
    mine = set(governance_perms.organisations_of(user).values_list("pk", flat=True))
    sides = set()
    if flow.source_id in mine:
        sides.add("source")
    if flow.destination_id in mine:
        sides.add("destination")
    return sides


def get_flow_for_upload(user: User, flow_id: object) -> DataFlow:
    """Return the flow if the person may upload on it: a CSU admin or a member of its source.

    A flow the person is no party to is a 404; the destination's people get a 403.
    """
    flow = governance_perms.get_data_flow_for_user(user, flow_id)
    if user.can("read_all"):
        governance_perms.require(user, "run_pseudonymisation")
    elif "source" not in _party_sides(user, flow):
        raise PermissionDenied("Only the flow's source sends extracts on it.")
    return flow


def get_dataset_for_user(user: User, dataset_id: object) -> Dataset:
    """Return the dataset if the person is a CSU admin or a party to its flow; else 404."""
    dataset = (
        Dataset.objects.select_related("data_flow__programme").filter(pk=_uuid(dataset_id)).first()
    )
    if dataset is None or not (user.can("read_all") or _party_sides(user, dataset.data_flow)):
        raise Http404("No such extract.")
    return dataset


def get_job_for_user(user: User, job_id: object, *, output: bool = False) -> Job:
    """Return the job for a CSU admin or a party; its output only for the flow's destination."""
    job = (
        Job.objects.select_related("dataset__data_flow__programme").filter(pk=_uuid(job_id)).first()
    )
    if job is None:
        raise Http404("No such job.")
    if user.can("read_all"):
        return job
    sides = _party_sides(user, job.dataset.data_flow)
    if not sides or (output and "destination" not in sides):
        raise Http404("No such job.")
    return job


def datasets_of(user: User):
    qs = Dataset.objects.select_related(
        "data_flow__programme", "data_flow__source", "data_flow__destination"
    )
    if user.can("read_all"):
        return qs
    mine = governance_perms.organisations_of(user)
    from django.db.models import Q

    return qs.filter(Q(data_flow__source__in=mine) | Q(data_flow__destination__in=mine))


def _uuid(value: object):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
