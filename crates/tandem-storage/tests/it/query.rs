//! `first_row`: the row sea-orm's `one()` would answer, on every backend.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, Set};
use tandem_storage::first_row;
use tandem_storage::testkit::TestDatabase;

mod probe {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "first_row_probe")]
    pub(super) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(super) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

tandem_storage::backend_tests!(
    first_row_answers_as_one_does,
    |test: TestDatabase| async move {
        let db = test.connect().await;
        let conn = db.connection();
        conn.execute_unprepared(
        "CREATE TABLE first_row_probe (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL)",
    )
    .await
    .unwrap();
        for (id, name) in [(1, "a"), (2, "b"), (3, "b")] {
            probe::Entity::insert(probe::ActiveModel {
                id: Set(id),
                name: Set(name.to_owned()),
            })
            .exec(conn)
            .await
            .unwrap();
        }
        let by_id = first_row(probe::Entity::find_by_id(2i64), conn)
            .await
            .unwrap();
        assert_eq!(by_id.map(|row| row.name), Some("b".to_owned()));
        // Several rows match: the first in the query's order, as `one()` answers.
        for descending in [false, true] {
            let select = probe::Entity::find().filter(probe::Column::Name.eq("b"));
            let select = if descending {
                select.order_by_desc(probe::Column::Id)
            } else {
                select.order_by_asc(probe::Column::Id)
            };
            let expected = select.clone().one(conn).await.unwrap();
            let found = first_row(select, conn).await.unwrap();
            assert_eq!(found, expected);
            assert_eq!(
                found.map(|row| row.id),
                Some(if descending { 3 } else { 2 })
            );
        }
        let none = first_row(probe::Entity::find_by_id(9i64), conn)
            .await
            .unwrap();
        assert_eq!(none, None);
        // Over and over, as a hot lookup runs (SQLite reuses the cached statement).
        for id in [1i64, 2, 3, 1, 2, 3] {
            let row = first_row(probe::Entity::find_by_id(id), conn)
                .await
                .unwrap();
            assert_eq!(row.map(|row| row.id), Some(id));
        }
    }
);
