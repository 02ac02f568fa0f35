"""Node scoping and permissions (R-ORG-3): one place turns (user, permission) into a scope."""

import pytest

from aftersales.core.errors import NotFound
from aftersales.customers.selectors import (
    can_see_pii,
    customer_get,
    customer_queryset,
    shown_phone,
    shown_street,
)
from aftersales.org.roles import ROLE_NODE_KINDS, ROLE_PERMS, Perm, Role
from aftersales.org.scope import principal


def ids(qs):
    return set(qs.values_list("id", flat=True))


def test_every_role_declares_permissions_and_node_levels():
    assert set(ROLE_PERMS) == set(Role.values) == set(ROLE_NODE_KINDS)
    assert ROLE_PERMS[Role.ADMIN] == frozenset(Perm.values)


def test_outlet_centre_and_hq_scopes(world):
    both = {world.c_pudong.pk, world.c_tianhe.pk}
    assert ids(customer_queryset(world.pudong_agent)) == {world.c_pudong.pk}
    assert ids(customer_queryset(world.hangzhou_agent)) == set()
    assert ids(customer_queryset(world.east_manager)) == {world.c_pudong.pk}
    assert ids(customer_queryset(world.tianhe_agent)) == {world.c_tianhe.pk}
    assert ids(customer_queryset(world.hq_manager)) == both
    assert ids(customer_queryset(world.admin)) == both
    assert ids(customer_queryset(world.trainer)) == set()
    assert ids(customer_queryset(world.nobody)) == set()


def test_out_of_scope_is_not_found(world):
    assert customer_get(world.pudong_agent, world.c_pudong.pk) == world.c_pudong
    with pytest.raises(NotFound):
        customer_get(world.pudong_agent, world.c_tianhe.pk)
    with pytest.raises(NotFound):
        customer_get(world.pudong_agent, 999999)


def test_a_customer_sees_only_their_own_file(world):
    assert ids(customer_queryset(world.customer_user)) == {world.c_pudong.pk}
    with pytest.raises(NotFound):
        customer_get(world.customer_user, world.c_tianhe.pk)
    assert ids(customer_queryset(world.customer_user, Perm.CUSTOMER_EDIT)) == set()


@pytest.mark.parametrize(
    "who, sees_pii",
    [("pudong_agent", True), ("pudong_dispatcher", True), ("pudong_tech", True), ("pudong_manager", True),
     ("admin", True), ("hq_manager", False), ("east_manager", False), ("quality", False), ("customer_user", True)],
)
def test_phone_and_street_masked_for_roles_that_do_not_need_them(world, who, sees_pii):
    user = getattr(world, who)
    c = world.c_pudong
    assert can_see_pii(user, c) is sees_pii
    assert shown_phone(user, c) == ("13812345678" if sees_pii else "138****5678")
    street = shown_street(user, c, world.a_pudong)
    assert street == ("张杨路500号2栋1201室" if sees_pii else "张杨****")


def test_several_roles_add_up(world):
    from aftersales.org.models import RoleAssignment

    RoleAssignment.objects.create(user=world.pudong_agent, role=Role.AGENT, node=world.tianhe)
    world.pudong_agent._aftersales_principal = None
    del world.pudong_agent._aftersales_principal
    assert ids(customer_queryset(world.pudong_agent)) == {world.c_pudong.pk, world.c_tianhe.pk}
    assert principal(world.pudong_agent).role_names == [Role.AGENT]
