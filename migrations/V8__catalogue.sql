-- Generated from the kind catalogue (shared/model/src/catalogue/) by
-- `inventory schema`: do not edit. A test fails when the newest
-- V<n>__catalogue.sql and the catalogue disagree. Idempotent: each kind's
-- table and history, their columns, and a partition of `link` per link.

-- aws/regions
CREATE TABLE IF NOT EXISTS aws_region (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, name));
ALTER TABLE aws_region ADD COLUMN IF NOT EXISTS endpoint text, ADD COLUMN IF NOT EXISTS opt_in_status text;
CREATE TABLE IF NOT EXISTS aws_region_version (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, name, seq));
ALTER TABLE aws_region_version ADD COLUMN IF NOT EXISTS endpoint text, ADD COLUMN IF NOT EXISTS opt_in_status text;
CREATE INDEX IF NOT EXISTS aws_region_id_idx ON aws_region (name);
CREATE INDEX IF NOT EXISTS aws_region_version_seq_idx ON aws_region_version (seq);
CREATE INDEX IF NOT EXISTS aws_region_version_valid_to_idx ON aws_region_version (valid_to) WHERE valid_to IS NOT NULL;

-- aws/availability-zones
CREATE TABLE IF NOT EXISTS aws_availability_zone (account_id text NOT NULL, region text NOT NULL, zone_name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, zone_name));
ALTER TABLE aws_availability_zone ADD COLUMN IF NOT EXISTS zone_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS zone_type text, ADD COLUMN IF NOT EXISTS opt_in_status text, ADD COLUMN IF NOT EXISTS group_name text;
CREATE TABLE IF NOT EXISTS aws_availability_zone_version (account_id text NOT NULL, region text NOT NULL, zone_name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, zone_name, seq));
ALTER TABLE aws_availability_zone_version ADD COLUMN IF NOT EXISTS zone_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS zone_type text, ADD COLUMN IF NOT EXISTS opt_in_status text, ADD COLUMN IF NOT EXISTS group_name text;
CREATE INDEX IF NOT EXISTS aws_availability_zone_id_idx ON aws_availability_zone (zone_name);
CREATE INDEX IF NOT EXISTS aws_availability_zone_version_seq_idx ON aws_availability_zone_version (seq);
CREATE INDEX IF NOT EXISTS aws_availability_zone_version_valid_to_idx ON aws_availability_zone_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_region_to_availability_zone PARTITION OF link FOR VALUES IN ('l_aws_region_to_availability_zone');

-- aws/vpcs
CREATE TABLE IF NOT EXISTS aws_vpc (account_id text NOT NULL, region text NOT NULL, vpc_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, vpc_id));
ALTER TABLE aws_vpc ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS cidr_block text, ADD COLUMN IF NOT EXISTS is_default boolean, ADD COLUMN IF NOT EXISTS dhcp_options_id text, ADD COLUMN IF NOT EXISTS instance_tenancy text, ADD COLUMN IF NOT EXISTS owner_id text;
CREATE TABLE IF NOT EXISTS aws_vpc_version (account_id text NOT NULL, region text NOT NULL, vpc_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, vpc_id, seq));
ALTER TABLE aws_vpc_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS cidr_block text, ADD COLUMN IF NOT EXISTS is_default boolean, ADD COLUMN IF NOT EXISTS dhcp_options_id text, ADD COLUMN IF NOT EXISTS instance_tenancy text, ADD COLUMN IF NOT EXISTS owner_id text;
CREATE INDEX IF NOT EXISTS aws_vpc_id_idx ON aws_vpc (vpc_id);
CREATE INDEX IF NOT EXISTS aws_vpc_version_seq_idx ON aws_vpc_version (seq);
CREATE INDEX IF NOT EXISTS aws_vpc_version_valid_to_idx ON aws_vpc_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_region_to_vpc PARTITION OF link FOR VALUES IN ('l_aws_region_to_vpc');
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_dhcp_options PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_dhcp_options');

-- aws/subnets
CREATE TABLE IF NOT EXISTS aws_subnet (account_id text NOT NULL, region text NOT NULL, subnet_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, subnet_id));
ALTER TABLE aws_subnet ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS cidr_block text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS availability_zone_id text, ADD COLUMN IF NOT EXISTS available_ip_address_count bigint, ADD COLUMN IF NOT EXISTS default_for_az boolean, ADD COLUMN IF NOT EXISTS map_public_ip_on_launch boolean;
CREATE TABLE IF NOT EXISTS aws_subnet_version (account_id text NOT NULL, region text NOT NULL, subnet_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, subnet_id, seq));
ALTER TABLE aws_subnet_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS cidr_block text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS availability_zone_id text, ADD COLUMN IF NOT EXISTS available_ip_address_count bigint, ADD COLUMN IF NOT EXISTS default_for_az boolean, ADD COLUMN IF NOT EXISTS map_public_ip_on_launch boolean;
CREATE INDEX IF NOT EXISTS aws_subnet_id_idx ON aws_subnet (subnet_id);
CREATE INDEX IF NOT EXISTS aws_subnet_version_seq_idx ON aws_subnet_version (seq);
CREATE INDEX IF NOT EXISTS aws_subnet_version_valid_to_idx ON aws_subnet_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_subnet PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_subnet');
CREATE TABLE IF NOT EXISTS l_aws_subnet_to_availability_zone PARTITION OF link FOR VALUES IN ('l_aws_subnet_to_availability_zone');

-- aws/instances
CREATE TABLE IF NOT EXISTS aws_instance (account_id text NOT NULL, region text NOT NULL, instance_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, instance_id));
ALTER TABLE aws_instance ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS instance_type text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS image_id text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS public_ip_address text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS architecture text, ADD COLUMN IF NOT EXISTS platform text, ADD COLUMN IF NOT EXISTS launch_time timestamptz, ADD COLUMN IF NOT EXISTS key_name text;
CREATE TABLE IF NOT EXISTS aws_instance_version (account_id text NOT NULL, region text NOT NULL, instance_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, instance_id, seq));
ALTER TABLE aws_instance_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS instance_type text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS image_id text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS public_ip_address text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS architecture text, ADD COLUMN IF NOT EXISTS platform text, ADD COLUMN IF NOT EXISTS launch_time timestamptz, ADD COLUMN IF NOT EXISTS key_name text;
CREATE INDEX IF NOT EXISTS aws_instance_id_idx ON aws_instance (instance_id);
CREATE INDEX IF NOT EXISTS aws_instance_version_seq_idx ON aws_instance_version (seq);
CREATE INDEX IF NOT EXISTS aws_instance_version_valid_to_idx ON aws_instance_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_instance PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_instance');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_subnet PARTITION OF link FOR VALUES IN ('l_aws_instance_to_subnet');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_region PARTITION OF link FOR VALUES IN ('l_aws_instance_to_region');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_image PARTITION OF link FOR VALUES IN ('l_aws_instance_to_image');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_network_interface PARTITION OF link FOR VALUES IN ('l_aws_instance_to_network_interface');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_security_group PARTITION OF link FOR VALUES IN ('l_aws_instance_to_security_group');
CREATE TABLE IF NOT EXISTS l_aws_instance_to_volume PARTITION OF link FOR VALUES IN ('l_aws_instance_to_volume');

-- aws/images
CREATE TABLE IF NOT EXISTS aws_image (account_id text NOT NULL, region text NOT NULL, image_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, image_id));
ALTER TABLE aws_image ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS is_public boolean, ADD COLUMN IF NOT EXISTS architecture text, ADD COLUMN IF NOT EXISTS image_type text, ADD COLUMN IF NOT EXISTS platform text, ADD COLUMN IF NOT EXISTS root_device_type text, ADD COLUMN IF NOT EXISTS virtualization_type text, ADD COLUMN IF NOT EXISTS creation_date timestamptz, ADD COLUMN IF NOT EXISTS description text;
CREATE TABLE IF NOT EXISTS aws_image_version (account_id text NOT NULL, region text NOT NULL, image_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, image_id, seq));
ALTER TABLE aws_image_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS is_public boolean, ADD COLUMN IF NOT EXISTS architecture text, ADD COLUMN IF NOT EXISTS image_type text, ADD COLUMN IF NOT EXISTS platform text, ADD COLUMN IF NOT EXISTS root_device_type text, ADD COLUMN IF NOT EXISTS virtualization_type text, ADD COLUMN IF NOT EXISTS creation_date timestamptz, ADD COLUMN IF NOT EXISTS description text;
CREATE INDEX IF NOT EXISTS aws_image_id_idx ON aws_image (image_id);
CREATE INDEX IF NOT EXISTS aws_image_version_seq_idx ON aws_image_version (seq);
CREATE INDEX IF NOT EXISTS aws_image_version_valid_to_idx ON aws_image_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_image_to_region PARTITION OF link FOR VALUES IN ('l_aws_image_to_region');

-- aws/network-interfaces
CREATE TABLE IF NOT EXISTS aws_network_interface (account_id text NOT NULL, region text NOT NULL, network_interface_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, network_interface_id));
ALTER TABLE aws_network_interface ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS interface_type text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS public_ip text, ADD COLUMN IF NOT EXISTS mac_address text, ADD COLUMN IF NOT EXISTS instance_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS description text;
CREATE TABLE IF NOT EXISTS aws_network_interface_version (account_id text NOT NULL, region text NOT NULL, network_interface_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, network_interface_id, seq));
ALTER TABLE aws_network_interface_version ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS interface_type text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS public_ip text, ADD COLUMN IF NOT EXISTS mac_address text, ADD COLUMN IF NOT EXISTS instance_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS description text;
CREATE INDEX IF NOT EXISTS aws_network_interface_id_idx ON aws_network_interface (network_interface_id);
CREATE INDEX IF NOT EXISTS aws_network_interface_version_seq_idx ON aws_network_interface_version (seq);
CREATE INDEX IF NOT EXISTS aws_network_interface_version_valid_to_idx ON aws_network_interface_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_network_interface_to_subnet PARTITION OF link FOR VALUES IN ('l_aws_network_interface_to_subnet');
CREATE TABLE IF NOT EXISTS l_aws_network_interface_to_security_group PARTITION OF link FOR VALUES IN ('l_aws_network_interface_to_security_group');

-- aws/dhcp-options
CREATE TABLE IF NOT EXISTS aws_dhcp_options (account_id text NOT NULL, region text NOT NULL, dhcp_options_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, dhcp_options_id));
ALTER TABLE aws_dhcp_options ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS configuration jsonb;
CREATE TABLE IF NOT EXISTS aws_dhcp_options_version (account_id text NOT NULL, region text NOT NULL, dhcp_options_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, dhcp_options_id, seq));
ALTER TABLE aws_dhcp_options_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS configuration jsonb;
CREATE INDEX IF NOT EXISTS aws_dhcp_options_id_idx ON aws_dhcp_options (dhcp_options_id);
CREATE INDEX IF NOT EXISTS aws_dhcp_options_version_seq_idx ON aws_dhcp_options_version (seq);
CREATE INDEX IF NOT EXISTS aws_dhcp_options_version_valid_to_idx ON aws_dhcp_options_version (valid_to) WHERE valid_to IS NOT NULL;

-- aws/security-groups
CREATE TABLE IF NOT EXISTS aws_security_group (account_id text NOT NULL, region text NOT NULL, group_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, group_id));
ALTER TABLE aws_security_group ADD COLUMN IF NOT EXISTS group_name text, ADD COLUMN IF NOT EXISTS description text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS ingress_rules jsonb, ADD COLUMN IF NOT EXISTS egress_rules jsonb;
CREATE TABLE IF NOT EXISTS aws_security_group_version (account_id text NOT NULL, region text NOT NULL, group_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, group_id, seq));
ALTER TABLE aws_security_group_version ADD COLUMN IF NOT EXISTS group_name text, ADD COLUMN IF NOT EXISTS description text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS ingress_rules jsonb, ADD COLUMN IF NOT EXISTS egress_rules jsonb;
CREATE INDEX IF NOT EXISTS aws_security_group_id_idx ON aws_security_group (group_id);
CREATE INDEX IF NOT EXISTS aws_security_group_version_seq_idx ON aws_security_group_version (seq);
CREATE INDEX IF NOT EXISTS aws_security_group_version_valid_to_idx ON aws_security_group_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_security_group PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_security_group');

-- aws/volumes
CREATE TABLE IF NOT EXISTS aws_volume (account_id text NOT NULL, region text NOT NULL, volume_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, volume_id));
ALTER TABLE aws_volume ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS size_gib bigint, ADD COLUMN IF NOT EXISTS volume_type text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS encrypted boolean, ADD COLUMN IF NOT EXISTS iops bigint, ADD COLUMN IF NOT EXISTS snapshot_id text, ADD COLUMN IF NOT EXISTS create_time timestamptz, ADD COLUMN IF NOT EXISTS attachments jsonb;
CREATE TABLE IF NOT EXISTS aws_volume_version (account_id text NOT NULL, region text NOT NULL, volume_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, volume_id, seq));
ALTER TABLE aws_volume_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS size_gib bigint, ADD COLUMN IF NOT EXISTS volume_type text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS availability_zone text, ADD COLUMN IF NOT EXISTS encrypted boolean, ADD COLUMN IF NOT EXISTS iops bigint, ADD COLUMN IF NOT EXISTS snapshot_id text, ADD COLUMN IF NOT EXISTS create_time timestamptz, ADD COLUMN IF NOT EXISTS attachments jsonb;
CREATE INDEX IF NOT EXISTS aws_volume_id_idx ON aws_volume (volume_id);
CREATE INDEX IF NOT EXISTS aws_volume_version_seq_idx ON aws_volume_version (seq);
CREATE INDEX IF NOT EXISTS aws_volume_version_valid_to_idx ON aws_volume_version (valid_to) WHERE valid_to IS NOT NULL;

-- aws/snapshots
CREATE TABLE IF NOT EXISTS aws_snapshot (account_id text NOT NULL, region text NOT NULL, snapshot_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, snapshot_id));
ALTER TABLE aws_snapshot ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS volume_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS volume_size_gib bigint, ADD COLUMN IF NOT EXISTS start_time timestamptz, ADD COLUMN IF NOT EXISTS progress text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS encrypted boolean, ADD COLUMN IF NOT EXISTS description text;
CREATE TABLE IF NOT EXISTS aws_snapshot_version (account_id text NOT NULL, region text NOT NULL, snapshot_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, snapshot_id, seq));
ALTER TABLE aws_snapshot_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS volume_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS volume_size_gib bigint, ADD COLUMN IF NOT EXISTS start_time timestamptz, ADD COLUMN IF NOT EXISTS progress text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS encrypted boolean, ADD COLUMN IF NOT EXISTS description text;
CREATE INDEX IF NOT EXISTS aws_snapshot_id_idx ON aws_snapshot (snapshot_id);
CREATE INDEX IF NOT EXISTS aws_snapshot_version_seq_idx ON aws_snapshot_version (seq);
CREATE INDEX IF NOT EXISTS aws_snapshot_version_valid_to_idx ON aws_snapshot_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_volume_to_snapshot PARTITION OF link FOR VALUES IN ('l_aws_volume_to_snapshot');

-- aws/route-tables
CREATE TABLE IF NOT EXISTS aws_route_table (account_id text NOT NULL, region text NOT NULL, route_table_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, route_table_id));
ALTER TABLE aws_route_table ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS routes jsonb, ADD COLUMN IF NOT EXISTS associations jsonb;
CREATE TABLE IF NOT EXISTS aws_route_table_version (account_id text NOT NULL, region text NOT NULL, route_table_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, route_table_id, seq));
ALTER TABLE aws_route_table_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS routes jsonb, ADD COLUMN IF NOT EXISTS associations jsonb;
CREATE INDEX IF NOT EXISTS aws_route_table_id_idx ON aws_route_table (route_table_id);
CREATE INDEX IF NOT EXISTS aws_route_table_version_seq_idx ON aws_route_table_version (seq);
CREATE INDEX IF NOT EXISTS aws_route_table_version_valid_to_idx ON aws_route_table_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_route_table PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_route_table');
CREATE TABLE IF NOT EXISTS l_aws_subnet_to_route_table PARTITION OF link FOR VALUES IN ('l_aws_subnet_to_route_table');

-- aws/internet-gateways
CREATE TABLE IF NOT EXISTS aws_internet_gateway (account_id text NOT NULL, region text NOT NULL, internet_gateway_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, internet_gateway_id));
ALTER TABLE aws_internet_gateway ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS attachments jsonb;
CREATE TABLE IF NOT EXISTS aws_internet_gateway_version (account_id text NOT NULL, region text NOT NULL, internet_gateway_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, internet_gateway_id, seq));
ALTER TABLE aws_internet_gateway_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS owner_id text, ADD COLUMN IF NOT EXISTS attachments jsonb;
CREATE INDEX IF NOT EXISTS aws_internet_gateway_id_idx ON aws_internet_gateway (internet_gateway_id);
CREATE INDEX IF NOT EXISTS aws_internet_gateway_version_seq_idx ON aws_internet_gateway_version (seq);
CREATE INDEX IF NOT EXISTS aws_internet_gateway_version_valid_to_idx ON aws_internet_gateway_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_internet_gateway PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_internet_gateway');

-- aws/nat-gateways
CREATE TABLE IF NOT EXISTS aws_nat_gateway (account_id text NOT NULL, region text NOT NULL, nat_gateway_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, nat_gateway_id));
ALTER TABLE aws_nat_gateway ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS connectivity_type text, ADD COLUMN IF NOT EXISTS create_time timestamptz, ADD COLUMN IF NOT EXISTS addresses jsonb;
CREATE TABLE IF NOT EXISTS aws_nat_gateway_version (account_id text NOT NULL, region text NOT NULL, nat_gateway_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, nat_gateway_id, seq));
ALTER TABLE aws_nat_gateway_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS vpc_id text, ADD COLUMN IF NOT EXISTS subnet_id text, ADD COLUMN IF NOT EXISTS state text, ADD COLUMN IF NOT EXISTS connectivity_type text, ADD COLUMN IF NOT EXISTS create_time timestamptz, ADD COLUMN IF NOT EXISTS addresses jsonb;
CREATE INDEX IF NOT EXISTS aws_nat_gateway_id_idx ON aws_nat_gateway (nat_gateway_id);
CREATE INDEX IF NOT EXISTS aws_nat_gateway_version_seq_idx ON aws_nat_gateway_version (seq);
CREATE INDEX IF NOT EXISTS aws_nat_gateway_version_valid_to_idx ON aws_nat_gateway_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_nat_gateway PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_nat_gateway');
CREATE TABLE IF NOT EXISTS l_aws_nat_gateway_to_subnet PARTITION OF link FOR VALUES IN ('l_aws_nat_gateway_to_subnet');

-- aws/elastic-ips
CREATE TABLE IF NOT EXISTS aws_elastic_ip (account_id text NOT NULL, region text NOT NULL, allocation_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, allocation_id));
ALTER TABLE aws_elastic_ip ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS public_ip text, ADD COLUMN IF NOT EXISTS domain text, ADD COLUMN IF NOT EXISTS instance_id text, ADD COLUMN IF NOT EXISTS network_interface_id text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS association_id text, ADD COLUMN IF NOT EXISTS network_border_group text;
CREATE TABLE IF NOT EXISTS aws_elastic_ip_version (account_id text NOT NULL, region text NOT NULL, allocation_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, allocation_id, seq));
ALTER TABLE aws_elastic_ip_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS public_ip text, ADD COLUMN IF NOT EXISTS domain text, ADD COLUMN IF NOT EXISTS instance_id text, ADD COLUMN IF NOT EXISTS network_interface_id text, ADD COLUMN IF NOT EXISTS private_ip_address text, ADD COLUMN IF NOT EXISTS association_id text, ADD COLUMN IF NOT EXISTS network_border_group text;
CREATE INDEX IF NOT EXISTS aws_elastic_ip_id_idx ON aws_elastic_ip (allocation_id);
CREATE INDEX IF NOT EXISTS aws_elastic_ip_version_seq_idx ON aws_elastic_ip_version (seq);
CREATE INDEX IF NOT EXISTS aws_elastic_ip_version_valid_to_idx ON aws_elastic_ip_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_elastic_ip_to_instance PARTITION OF link FOR VALUES IN ('l_aws_elastic_ip_to_instance');
CREATE TABLE IF NOT EXISTS l_aws_elastic_ip_to_network_interface PARTITION OF link FOR VALUES IN ('l_aws_elastic_ip_to_network_interface');

-- aws/key-pairs
CREATE TABLE IF NOT EXISTS aws_key_pair (account_id text NOT NULL, region text NOT NULL, key_name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, key_name));
ALTER TABLE aws_key_pair ADD COLUMN IF NOT EXISTS key_pair_id text, ADD COLUMN IF NOT EXISTS key_type text, ADD COLUMN IF NOT EXISTS fingerprint text, ADD COLUMN IF NOT EXISTS create_time timestamptz;
CREATE TABLE IF NOT EXISTS aws_key_pair_version (account_id text NOT NULL, region text NOT NULL, key_name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, key_name, seq));
ALTER TABLE aws_key_pair_version ADD COLUMN IF NOT EXISTS key_pair_id text, ADD COLUMN IF NOT EXISTS key_type text, ADD COLUMN IF NOT EXISTS fingerprint text, ADD COLUMN IF NOT EXISTS create_time timestamptz;
CREATE INDEX IF NOT EXISTS aws_key_pair_id_idx ON aws_key_pair (key_name);
CREATE INDEX IF NOT EXISTS aws_key_pair_version_seq_idx ON aws_key_pair_version (seq);
CREATE INDEX IF NOT EXISTS aws_key_pair_version_valid_to_idx ON aws_key_pair_version (valid_to) WHERE valid_to IS NOT NULL;

-- aws/vpc-peering-connections
CREATE TABLE IF NOT EXISTS aws_vpc_peering_connection (account_id text NOT NULL, region text NOT NULL, vpc_peering_connection_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, region, vpc_peering_connection_id));
ALTER TABLE aws_vpc_peering_connection ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS requester_vpc_id text, ADD COLUMN IF NOT EXISTS requester_owner_id text, ADD COLUMN IF NOT EXISTS requester_region text, ADD COLUMN IF NOT EXISTS accepter_vpc_id text, ADD COLUMN IF NOT EXISTS accepter_owner_id text, ADD COLUMN IF NOT EXISTS accepter_region text, ADD COLUMN IF NOT EXISTS expiration_time timestamptz;
CREATE TABLE IF NOT EXISTS aws_vpc_peering_connection_version (account_id text NOT NULL, region text NOT NULL, vpc_peering_connection_id text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, region, vpc_peering_connection_id, seq));
ALTER TABLE aws_vpc_peering_connection_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS requester_vpc_id text, ADD COLUMN IF NOT EXISTS requester_owner_id text, ADD COLUMN IF NOT EXISTS requester_region text, ADD COLUMN IF NOT EXISTS accepter_vpc_id text, ADD COLUMN IF NOT EXISTS accepter_owner_id text, ADD COLUMN IF NOT EXISTS accepter_region text, ADD COLUMN IF NOT EXISTS expiration_time timestamptz;
CREATE INDEX IF NOT EXISTS aws_vpc_peering_connection_id_idx ON aws_vpc_peering_connection (vpc_peering_connection_id);
CREATE INDEX IF NOT EXISTS aws_vpc_peering_connection_version_seq_idx ON aws_vpc_peering_connection_version (seq);
CREATE INDEX IF NOT EXISTS aws_vpc_peering_connection_version_valid_to_idx ON aws_vpc_peering_connection_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_aws_vpc_to_vpc_peering_connection PARTITION OF link FOR VALUES IN ('l_aws_vpc_to_vpc_peering_connection');

-- ganeti/groups
CREATE TABLE IF NOT EXISTS ganeti_group (account_id text NOT NULL, uuid text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, uuid));
ALTER TABLE ganeti_group ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS alloc_policy text, ADD COLUMN IF NOT EXISTS node_count bigint;
CREATE TABLE IF NOT EXISTS ganeti_group_version (account_id text NOT NULL, uuid text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, uuid, seq));
ALTER TABLE ganeti_group_version ADD COLUMN IF NOT EXISTS name text, ADD COLUMN IF NOT EXISTS alloc_policy text, ADD COLUMN IF NOT EXISTS node_count bigint;
CREATE INDEX IF NOT EXISTS ganeti_group_id_idx ON ganeti_group (uuid);
CREATE INDEX IF NOT EXISTS ganeti_group_version_seq_idx ON ganeti_group_version (seq);
CREATE INDEX IF NOT EXISTS ganeti_group_version_valid_to_idx ON ganeti_group_version (valid_to) WHERE valid_to IS NOT NULL;

-- ganeti/nodes
CREATE TABLE IF NOT EXISTS ganeti_node (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, name));
ALTER TABLE ganeti_node ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS role text, ADD COLUMN IF NOT EXISTS offline boolean, ADD COLUMN IF NOT EXISTS drained boolean, ADD COLUMN IF NOT EXISTS master_candidate boolean, ADD COLUMN IF NOT EXISTS primary_ip text, ADD COLUMN IF NOT EXISTS secondary_ip text, ADD COLUMN IF NOT EXISTS cpus bigint, ADD COLUMN IF NOT EXISTS memory_total_mib bigint, ADD COLUMN IF NOT EXISTS memory_free_mib bigint, ADD COLUMN IF NOT EXISTS disk_total_mib bigint, ADD COLUMN IF NOT EXISTS disk_free_mib bigint, ADD COLUMN IF NOT EXISTS primary_instances bigint, ADD COLUMN IF NOT EXISTS group_uuid text;
CREATE TABLE IF NOT EXISTS ganeti_node_version (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, name, seq));
ALTER TABLE ganeti_node_version ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS role text, ADD COLUMN IF NOT EXISTS offline boolean, ADD COLUMN IF NOT EXISTS drained boolean, ADD COLUMN IF NOT EXISTS master_candidate boolean, ADD COLUMN IF NOT EXISTS primary_ip text, ADD COLUMN IF NOT EXISTS secondary_ip text, ADD COLUMN IF NOT EXISTS cpus bigint, ADD COLUMN IF NOT EXISTS memory_total_mib bigint, ADD COLUMN IF NOT EXISTS memory_free_mib bigint, ADD COLUMN IF NOT EXISTS disk_total_mib bigint, ADD COLUMN IF NOT EXISTS disk_free_mib bigint, ADD COLUMN IF NOT EXISTS primary_instances bigint, ADD COLUMN IF NOT EXISTS group_uuid text;
CREATE INDEX IF NOT EXISTS ganeti_node_id_idx ON ganeti_node (name);
CREATE INDEX IF NOT EXISTS ganeti_node_version_seq_idx ON ganeti_node_version (seq);
CREATE INDEX IF NOT EXISTS ganeti_node_version_valid_to_idx ON ganeti_node_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_ganeti_node_to_group PARTITION OF link FOR VALUES IN ('l_ganeti_node_to_group');

-- ganeti/networks
CREATE TABLE IF NOT EXISTS ganeti_network (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, name));
ALTER TABLE ganeti_network ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS network text, ADD COLUMN IF NOT EXISTS gateway text, ADD COLUMN IF NOT EXISTS network6 text, ADD COLUMN IF NOT EXISTS gateway6 text, ADD COLUMN IF NOT EXISTS mac_prefix text, ADD COLUMN IF NOT EXISTS free_count bigint, ADD COLUMN IF NOT EXISTS reserved_count bigint;
CREATE TABLE IF NOT EXISTS ganeti_network_version (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, name, seq));
ALTER TABLE ganeti_network_version ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS network text, ADD COLUMN IF NOT EXISTS gateway text, ADD COLUMN IF NOT EXISTS network6 text, ADD COLUMN IF NOT EXISTS gateway6 text, ADD COLUMN IF NOT EXISTS mac_prefix text, ADD COLUMN IF NOT EXISTS free_count bigint, ADD COLUMN IF NOT EXISTS reserved_count bigint;
CREATE INDEX IF NOT EXISTS ganeti_network_id_idx ON ganeti_network (name);
CREATE INDEX IF NOT EXISTS ganeti_network_version_seq_idx ON ganeti_network_version (seq);
CREATE INDEX IF NOT EXISTS ganeti_network_version_valid_to_idx ON ganeti_network_version (valid_to) WHERE valid_to IS NOT NULL;

-- ganeti/instances
CREATE TABLE IF NOT EXISTS ganeti_instance (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, first_seen_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL, deleted_at timestamptz, scan_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (account_id, name));
ALTER TABLE ganeti_instance ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS os text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS admin_state text, ADD COLUMN IF NOT EXISTS oper_state boolean, ADD COLUMN IF NOT EXISTS disk_template text, ADD COLUMN IF NOT EXISTS primary_node text, ADD COLUMN IF NOT EXISTS vcpus bigint, ADD COLUMN IF NOT EXISTS memory_mib bigint, ADD COLUMN IF NOT EXISTS disk_usage_mib bigint, ADD COLUMN IF NOT EXISTS nic_ips jsonb;
CREATE TABLE IF NOT EXISTS ganeti_instance_version (account_id text NOT NULL, name text NOT NULL, tags jsonb NOT NULL DEFAULT '{}', raw jsonb NOT NULL, content_hash text NOT NULL, scan_id text NOT NULL, seq bigint NOT NULL, change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted')), valid_from timestamptz NOT NULL, valid_to timestamptz, request_id text, trace_id text, links jsonb NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, name, seq));
ALTER TABLE ganeti_instance_version ADD COLUMN IF NOT EXISTS uuid text, ADD COLUMN IF NOT EXISTS os text, ADD COLUMN IF NOT EXISTS status text, ADD COLUMN IF NOT EXISTS admin_state text, ADD COLUMN IF NOT EXISTS oper_state boolean, ADD COLUMN IF NOT EXISTS disk_template text, ADD COLUMN IF NOT EXISTS primary_node text, ADD COLUMN IF NOT EXISTS vcpus bigint, ADD COLUMN IF NOT EXISTS memory_mib bigint, ADD COLUMN IF NOT EXISTS disk_usage_mib bigint, ADD COLUMN IF NOT EXISTS nic_ips jsonb;
CREATE INDEX IF NOT EXISTS ganeti_instance_id_idx ON ganeti_instance (name);
CREATE INDEX IF NOT EXISTS ganeti_instance_version_seq_idx ON ganeti_instance_version (seq);
CREATE INDEX IF NOT EXISTS ganeti_instance_version_valid_to_idx ON ganeti_instance_version (valid_to) WHERE valid_to IS NOT NULL;
CREATE TABLE IF NOT EXISTS l_ganeti_instance_to_node PARTITION OF link FOR VALUES IN ('l_ganeti_instance_to_node');
CREATE TABLE IF NOT EXISTS l_ganeti_instance_to_network PARTITION OF link FOR VALUES IN ('l_ganeti_instance_to_network');
