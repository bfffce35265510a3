-- EC2 breadth: thirteen more kinds and the links between all of them. Tables
-- follow shared/model/src/catalogue.rs (checked by the integration tests).
--
-- From here on a kind's table and a link table are each one call:
--     SELECT inventory_kind_table('aws_volume', true, 'volume_id', $$ size_gib bigint $$);
--     SELECT inventory_link_table('l_aws_instance_to_volume', 'instance_id', 'volume_id');

-- A kind's table: key (account_id, [region,] <id>), the typed columns given,
-- and the columns every kind has; plus its history table (V2).
CREATE FUNCTION inventory_kind_table(t text, regional boolean, id_column text, columns text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE %I (
            account_id     text NOT NULL,
            %s
            %I             text NOT NULL,
            %s,
            tags           jsonb NOT NULL DEFAULT ''{}'',
            raw            jsonb NOT NULL,
            content_hash   text NOT NULL,
            first_seen_at  timestamptz NOT NULL,
            last_seen_at   timestamptz NOT NULL,
            deleted_at     timestamptz,
            scan_id        text NOT NULL,
            seq            bigint NOT NULL,
            PRIMARY KEY (account_id, %s %I)
        )',
        t,
        CASE WHEN regional THEN 'region text NOT NULL,' ELSE '' END,
        id_column,
        columns,
        CASE WHEN regional THEN 'region,' ELSE '' END,
        id_column);
    -- Lookups by id alone (the API's get, the other side of a link).
    EXECUTE format('CREATE INDEX %I ON %I (%I)', t || '_id_idx', t, id_column);
    PERFORM inventory_version_table(t::regclass);
END
$$;

-- A link table keyed by natural ids (see V1): both indexes lead with a resource id.
CREATE FUNCTION inventory_link_table(t text, a text, b text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE %I (
            account_id  text NOT NULL,
            region      text NOT NULL,
            %I          text NOT NULL,
            %I          text NOT NULL,
            seq         bigint NOT NULL,
            PRIMARY KEY (%I, %I, account_id, region)
        )', t, a, b, a, b);
    EXECUTE format('CREATE INDEX %I ON %I (%I, account_id, region)', t || '_b_idx', t, b);
END
$$;

ALTER TABLE aws_instance ADD COLUMN key_name text;
ALTER TABLE aws_instance_version ADD COLUMN key_name text;

SELECT inventory_kind_table('aws_availability_zone', true, 'zone_name', $$
    zone_id        text,
    state          text,
    zone_type      text,
    opt_in_status  text,
    group_name     text
$$);

SELECT inventory_kind_table('aws_image', true, 'image_id', $$
    name                 text,
    state                text,
    owner_id             text,
    is_public            boolean,
    architecture         text,
    image_type           text,
    platform             text,
    root_device_type     text,
    virtualization_type  text,
    creation_date        timestamptz,
    description          text
$$);

SELECT inventory_kind_table('aws_network_interface', true, 'network_interface_id', $$
    vpc_id              text,
    subnet_id           text,
    availability_zone   text,
    status              text,
    interface_type      text,
    private_ip_address  text,
    public_ip           text,
    mac_address         text,
    instance_id         text,
    owner_id            text,
    description         text
$$);

SELECT inventory_kind_table('aws_dhcp_options', true, 'dhcp_options_id', $$
    name           text,
    owner_id       text,
    configuration  jsonb
$$);

SELECT inventory_kind_table('aws_security_group', true, 'group_id', $$
    group_name     text,
    description    text,
    vpc_id         text,
    owner_id       text,
    ingress_rules  jsonb,
    egress_rules   jsonb
$$);

SELECT inventory_kind_table('aws_volume', true, 'volume_id', $$
    name               text,
    size_gib           bigint,
    volume_type        text,
    state              text,
    availability_zone  text,
    encrypted          boolean,
    iops               bigint,
    snapshot_id        text,
    create_time        timestamptz,
    attachments        jsonb
$$);

SELECT inventory_kind_table('aws_snapshot', true, 'snapshot_id', $$
    name             text,
    volume_id        text,
    state            text,
    volume_size_gib  bigint,
    start_time       timestamptz,
    progress         text,
    owner_id         text,
    encrypted        boolean,
    description      text
$$);

SELECT inventory_kind_table('aws_route_table', true, 'route_table_id', $$
    name          text,
    vpc_id        text,
    owner_id      text,
    routes        jsonb,
    associations  jsonb
$$);

SELECT inventory_kind_table('aws_internet_gateway', true, 'internet_gateway_id', $$
    name         text,
    owner_id     text,
    attachments  jsonb
$$);

SELECT inventory_kind_table('aws_nat_gateway', true, 'nat_gateway_id', $$
    name               text,
    vpc_id             text,
    subnet_id          text,
    state              text,
    connectivity_type  text,
    create_time        timestamptz,
    addresses          jsonb
$$);

SELECT inventory_kind_table('aws_elastic_ip', true, 'allocation_id', $$
    name                  text,
    public_ip             text,
    domain                text,
    instance_id           text,
    network_interface_id  text,
    private_ip_address    text,
    association_id        text,
    network_border_group  text
$$);

SELECT inventory_kind_table('aws_key_pair', true, 'key_name', $$
    key_pair_id  text,
    key_type     text,
    fingerprint  text,
    create_time  timestamptz
$$);

SELECT inventory_kind_table('aws_vpc_peering_connection', true, 'vpc_peering_connection_id', $$
    name                text,
    status              text,
    requester_vpc_id    text,
    requester_owner_id  text,
    requester_region    text,
    accepter_vpc_id     text,
    accepter_owner_id   text,
    accepter_region     text,
    expiration_time     timestamptz
$$);

SELECT inventory_link_table('l_aws_region_to_availability_zone', 'region_name', 'zone_name');
SELECT inventory_link_table('l_aws_vpc_to_dhcp_options', 'vpc_id', 'dhcp_options_id');
SELECT inventory_link_table('l_aws_subnet_to_availability_zone', 'subnet_id', 'zone_name');
SELECT inventory_link_table('l_aws_instance_to_region', 'instance_id', 'region_name');
SELECT inventory_link_table('l_aws_instance_to_image', 'instance_id', 'image_id');
SELECT inventory_link_table('l_aws_instance_to_network_interface', 'instance_id', 'network_interface_id');
SELECT inventory_link_table('l_aws_instance_to_security_group', 'instance_id', 'group_id');
SELECT inventory_link_table('l_aws_instance_to_volume', 'instance_id', 'volume_id');
SELECT inventory_link_table('l_aws_image_to_region', 'image_id', 'region_name');
SELECT inventory_link_table('l_aws_network_interface_to_subnet', 'network_interface_id', 'subnet_id');
SELECT inventory_link_table('l_aws_network_interface_to_security_group', 'network_interface_id', 'group_id');
SELECT inventory_link_table('l_aws_vpc_to_security_group', 'vpc_id', 'group_id');
SELECT inventory_link_table('l_aws_volume_to_snapshot', 'volume_id', 'snapshot_id');
SELECT inventory_link_table('l_aws_vpc_to_route_table', 'vpc_id', 'route_table_id');
SELECT inventory_link_table('l_aws_subnet_to_route_table', 'subnet_id', 'route_table_id');
SELECT inventory_link_table('l_aws_vpc_to_internet_gateway', 'vpc_id', 'internet_gateway_id');
SELECT inventory_link_table('l_aws_vpc_to_nat_gateway', 'vpc_id', 'nat_gateway_id');
SELECT inventory_link_table('l_aws_nat_gateway_to_subnet', 'nat_gateway_id', 'subnet_id');
SELECT inventory_link_table('l_aws_elastic_ip_to_instance', 'allocation_id', 'instance_id');
SELECT inventory_link_table('l_aws_elastic_ip_to_network_interface', 'allocation_id', 'network_interface_id');
SELECT inventory_link_table('l_aws_vpc_to_vpc_peering_connection', 'vpc_id', 'vpc_peering_connection_id');
