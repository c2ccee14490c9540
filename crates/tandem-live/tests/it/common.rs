use tandem_live::{ClientInfo, OrgId, Role};

pub(crate) fn viewer(user_id: i64) -> ClientInfo {
    ClientInfo {
        user_id,
        org_id: OrgId(1),
        role: Role::Viewer,
    }
}

pub(crate) fn admin(user_id: i64) -> ClientInfo {
    ClientInfo {
        user_id,
        org_id: OrgId(1),
        role: Role::Admin,
    }
}
