"""Seed the reference table of Type 1 opt-out codes (SNOMED CT, Read v2, CTV3)."""

from django.db import migrations

CODES = [
    {
        "snomed_ct": "827241000000103",
        "kind": "dissent",
        "display": "Dissent from secondary use of general practitioner patient identifiable data",
        "read_v2": "9Nu0.",
        "ctv3": "XaZ89",
        "preferred": True,
    },
    {
        "snomed_ct": "827261000000102",
        "kind": "withdrawal",
        "display": "Dissent withdrawn for secondary use of general practitioner patient identifiable data",
        "read_v2": "9Nu1.",
        "ctv3": "XaZ8A",
        "preferred": True,
    },
]


def seed(apps, schema_editor):
    OptOutCode = apps.get_model("consent", "OptOutCode")
    for row in CODES:
        OptOutCode.objects.update_or_create(snomed_ct=row["snomed_ct"], defaults=row)


def unseed(apps, schema_editor):
    apps.get_model("consent", "OptOutCode").objects.filter(
        snomed_ct__in=[c["snomed_ct"] for c in CODES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
