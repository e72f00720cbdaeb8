"""The schema as create_all made it before migrations existed (drafted by autogenerate,
reviewed): sites, kiosks, tokens, history, device status, events, alerts, commands,
usage, users, API tokens, revoked maintenance credentials.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), server_default='', nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=16), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('first_seen', sa.Double(), nullable=False),
    sa.Column('last_seen', sa.Double(), nullable=False),
    sa.Column('resolved_at', sa.Double(), nullable=True),
    sa.Column('acked_by', sa.String(length=64), nullable=True),
    sa.Column('acked_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    op.create_index(op.f('ix_alerts_device_id_resolved_at'), 'alerts', ['device_id', 'resolved_at'], unique=False)
    op.create_index(op.f('ix_alerts_resolved_at_severity'), 'alerts', ['resolved_at', 'severity'], unique=False)
    op.create_index('uq_alerts_open_dedupe_key', 'alerts', ['dedupe_key'], unique=True, sqlite_where=sa.text('resolved_at IS NULL'), postgresql_where=sa.text('resolved_at IS NULL'))
    op.create_table('commands',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('args', sa.Text(), server_default='{}', nullable=False),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('delivered_at', sa.Double(), nullable=True),
    sa.Column('finished_at', sa.Double(), nullable=True),
    sa.Column('result_received_at', sa.Double(), nullable=True),
    sa.Column('detail', sa.String(length=500), server_default='', nullable=False),
    sa.Column('data', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commands'))
    )
    op.create_index(op.f('ix_commands_device_id_status'), 'commands', ['device_id', 'status'], unique=False)
    op.create_table('device_status',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('device_class', sa.String(length=32), nullable=False),
    sa.Column('lifecycle', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('supplies', sa.Text(), server_default='{}', nullable=False),
    sa.Column('error_kind', sa.String(length=16), nullable=True),
    sa.Column('error_action', sa.String(length=16), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('error_text', sa.String(length=500), nullable=True),
    sa.Column('error_at', sa.Double(), nullable=True),
    sa.Column('info', sa.Text(), server_default='{}', nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'name', name=op.f('pk_device_status'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), server_default='{}', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_index(op.f('ix_events_at'), 'events', ['at'], unique=False)
    op.create_index(op.f('ix_events_device_id_at'), 'events', ['device_id', 'at'], unique=False)
    op.create_table('heartbeats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('sent_at', sa.Double(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('app_state', sa.String(length=16), nullable=False),
    sa.Column('screen', sa.String(length=16), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('journeys_completed', sa.BigInteger(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_heartbeats'))
    )
    op.create_index(op.f('ix_heartbeats_device_id_received_at'), 'heartbeats', ['device_id', 'received_at'], unique=False)
    op.create_index(op.f('ix_heartbeats_received_at'), 'heartbeats', ['received_at'], unique=False)
    op.create_table('revoked_credentials',
    sa.Column('credential_id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.Double(), nullable=False),
    sa.Column('revoked_by', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('credential_id', name=op.f('pk_revoked_credentials'))
    )
    op.create_table('sites',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('site_type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('longitude', sa.Double(), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites'))
    )
    op.create_index(op.f('ix_sites_region'), 'sites', ['region'], unique=False)
    op.create_table('usage_daily',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('completed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('abandoned', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('failed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rating_very_satisfied', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rating_satisfied', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rating_basic', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rating_dissatisfied', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rating_very_dissatisfied', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('day', 'site_id', 'item_id', name=op.f('pk_usage_daily'))
    )
    op.create_index(op.f('ix_usage_daily_region_day'), 'usage_daily', ['region', 'day'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('regions', sa.String(length=500), server_default='', nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('disabled_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('api_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_api_tokens'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('devices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.Column('public_key_pem', sa.Text(), nullable=False),
    sa.Column('enrolled_at', sa.Double(), nullable=False),
    sa.Column('last_counter', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('revoked_at', sa.Double(), nullable=True),
    sa.Column('revoked_by', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('batch_token', sa.BigInteger(), nullable=True),
    sa.Column('prev_state', sa.String(length=16), nullable=True),
    sa.Column('prev_last_seq', sa.BigInteger(), nullable=True),
    sa.Column('prev_devices_digest', sa.String(length=32), nullable=True),
    sa.Column('state_since', sa.Double(), nullable=True),
    sa.Column('offline_expected', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('last_seen', sa.Double(), nullable=True),
    sa.Column('late_after', sa.Double(), nullable=True),
    sa.Column('offline_after', sa.Double(), nullable=True),
    sa.Column('interval_s', sa.Integer(), server_default='30', nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=True),
    sa.Column('last_sent_at', sa.Double(), nullable=True),
    sa.Column('clock_skew_s', sa.Double(), nullable=True),
    sa.Column('clock_synced', sa.Boolean(), nullable=True),
    sa.Column('app_state', sa.String(length=16), nullable=True),
    sa.Column('screen', sa.String(length=16), nullable=True),
    sa.Column('app_version', sa.String(length=64), nullable=True),
    sa.Column('catalogue_version', sa.String(length=64), nullable=True),
    sa.Column('catalogue_published_at', sa.Double(), nullable=True),
    sa.Column('config_version', sa.String(length=64), nullable=True),
    sa.Column('disk_free_bytes', sa.BigInteger(), nullable=True),
    sa.Column('disk_total_bytes', sa.BigInteger(), nullable=True),
    sa.Column('door_open', sa.Boolean(), nullable=True),
    sa.Column('tamper', sa.Boolean(), nullable=True),
    sa.Column('health', sa.String(length=16), server_default='ok', nullable=False),
    sa.Column('last_heartbeat', sa.Text(), nullable=True),
    sa.Column('devices_digest', sa.String(length=32), nullable=True),
    sa.Column('conditions', sa.Text(), server_default='[]', nullable=False),
    sa.Column('conditions_digest', sa.String(length=32), nullable=True),
    sa.Column('cond_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('alert_dirty', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('pending_commands', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_devices_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices'))
    )
    op.create_index('ix_devices_alert_dirty', 'devices', ['alert_dirty'], unique=False, sqlite_where=sa.text('alert_dirty'), postgresql_where=sa.text('alert_dirty'))
    op.create_index(op.f('ix_devices_site_id'), 'devices', ['site_id'], unique=False)
    op.create_index(op.f('ix_devices_state'), 'devices', ['state'], unique=False)
    op.create_table('enrolment_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('created_by', sa.String(length=64), server_default='', nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.Column('used_at', sa.Double(), nullable=True),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_enrolment_tokens_site_id_sites')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_enrolment_tokens'))
    )


def downgrade() -> None:
    op.drop_table('enrolment_tokens')
    op.drop_index(op.f('ix_devices_state'), table_name='devices')
    op.drop_index(op.f('ix_devices_site_id'), table_name='devices')
    op.drop_index('ix_devices_alert_dirty', table_name='devices', sqlite_where=sa.text('alert_dirty'), postgresql_where=sa.text('alert_dirty'))
    op.drop_table('devices')
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_index(op.f('ix_usage_daily_region_day'), table_name='usage_daily')
    op.drop_table('usage_daily')
    op.drop_index(op.f('ix_sites_region'), table_name='sites')
    op.drop_table('sites')
    op.drop_table('revoked_credentials')
    op.drop_index(op.f('ix_heartbeats_received_at'), table_name='heartbeats')
    op.drop_index(op.f('ix_heartbeats_device_id_received_at'), table_name='heartbeats')
    op.drop_table('heartbeats')
    op.drop_index(op.f('ix_events_device_id_at'), table_name='events')
    op.drop_index(op.f('ix_events_at'), table_name='events')
    op.drop_table('events')
    op.drop_table('device_status')
    op.drop_index(op.f('ix_commands_device_id_status'), table_name='commands')
    op.drop_table('commands')
    op.drop_index('uq_alerts_open_dedupe_key', table_name='alerts', sqlite_where=sa.text('resolved_at IS NULL'), postgresql_where=sa.text('resolved_at IS NULL'))
    op.drop_index(op.f('ix_alerts_resolved_at_severity'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_device_id_resolved_at'), table_name='alerts')
    op.drop_table('alerts')
