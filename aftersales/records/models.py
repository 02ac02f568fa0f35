"""The append-only audit trail (R-REC-2).

Every write of every service appends one ``AuditEntry`` in the same transaction. Entries
form one hash chain *per object* (``chain``, e.g. ``customers.customer:42``): each entry's
``hash`` covers its content and the previous entry's hash, so an edited entry or a gap in
``seq`` is detected by ``manage.py audit_verify``. Writers of different objects never wait
on each other; writers of the same object are already serialised by the row lock their
service takes, and ``(chain, seq)`` is unique as a safety net.

The tail of a chain is sealed by ``AuditAnchor`` rows written by a periodic job: each anchor
lists the head (seq, hash) of every chain that changed in its window and is itself chained
to the previous anchor, so deleting the newest entries of a chain (or a whole chain) is
detected too, once an anchor has covered them.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    chain = models.CharField(_("链"), max_length=80)
    seq = models.PositiveIntegerField(_("序号"))
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(_("时间"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", verbose_name=_("操作人"),
        # The actor's id is part of the entry's hash: deleting a user must never rewrite it.
        on_delete=models.DO_NOTHING, db_constraint=False,
    )
    actor_label = models.CharField(_("操作人"), max_length=150, blank=True)
    node_id = models.BigIntegerField(_("节点"), null=True, blank=True)
    object_type = models.CharField(_("对象类型"), max_length=60)
    object_id = models.CharField(_("对象"), max_length=40)
    action = models.CharField(_("操作"), max_length=40)
    before = models.JSONField(_("修改前"), null=True, blank=True)
    after = models.JSONField(_("修改后"), null=True, blank=True)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique")]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["node_id", "at"], name="audit_node_at_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_at_idx"),
        ]

    def __str__(self):
        return f"{self.chain}#{self.seq} {self.action}"


class AuditAnchor(models.Model):
    """A seal over the chain heads that changed in (``window_start``, ``window_end``]."""

    at = models.DateTimeField(auto_now_add=True)
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField()
    heads = models.JSONField(default=dict)  # {chain: [seq, hash]}
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("审计锚点")
        verbose_name_plural = _("审计锚点")
        ordering = ["id"]

    def __str__(self):
        return f"anchor {self.pk} ≤ {self.window_end:%Y-%m-%d %H:%M}"
