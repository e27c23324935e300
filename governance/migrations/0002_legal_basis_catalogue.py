from django.db import migrations


def load(apps, schema_editor):
    from governance.catalogue import legal_bases_sync

    legal_bases_sync(apps.get_model("governance", "LegalBasis"))


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
