from django.db import migrations


def create_head(apps, schema_editor):
    apps.get_model("phm_portal", "AuditChainHead").objects.get_or_create(singleton=1)


class Migration(migrations.Migration):
    dependencies = [("phm_portal", "0001_initial")]
    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
