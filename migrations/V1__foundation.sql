-- Foundation: projection bookkeeping, scans, dead letters, the first four AWS kinds
-- and their links. Tables follow shared/model/src/catalogue.rs; the integration
-- tests check that every catalogue column exists here with its type.

-- Where each projection stands in the event stream. Written in the same
-- transaction as the rows a batch changes.
CREATE TABLE projection_checkpoint (
    projection  text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events that broke the contract: kept with the reason and the raw bytes, never applied.
CREATE TABLE dead_letter (
    id          bigserial PRIMARY KEY,
    projection  text NOT NULL,
    stream_seq  bigint NOT NULL,
    subject     text NOT NULL,
    reason      text NOT NULL,
    payload     bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, stream_seq)
);

-- One row per scan of a (source, kind, account, region) scope.
CREATE TABLE scan (
    scan_id         text PRIMARY KEY,
    source          text NOT NULL,
    kind            text NOT NULL,
    account_id      text NOT NULL,
    region          text NOT NULL DEFAULT '',
    request_id      text,
    state           text NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    started_at      timestamptz,
    finished_at     timestamptz,
    resources_seen  bigint,
    error           text,
    seq             bigint NOT NULL
);
CREATE INDEX scan_scope_idx ON scan (source, kind, account_id, region, finished_at DESC);

CREATE TABLE aws_region (
    account_id     text NOT NULL,
    name           text NOT NULL,
    endpoint       text,
    opt_in_status  text,
    tags           jsonb NOT NULL DEFAULT '{}',
    raw            jsonb NOT NULL,
    content_hash   text NOT NULL,
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    deleted_at     timestamptz,
    scan_id        text NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE aws_vpc (
    account_id        text NOT NULL,
    region            text NOT NULL,
    vpc_id            text NOT NULL,
    name              text,
    state             text,
    cidr_block        text,
    is_default        boolean,
    dhcp_options_id   text,
    instance_tenancy  text,
    owner_id          text,
    tags              jsonb NOT NULL DEFAULT '{}',
    raw               jsonb NOT NULL,
    content_hash      text NOT NULL,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    deleted_at        timestamptz,
    scan_id           text NOT NULL,
    seq               bigint NOT NULL,
    PRIMARY KEY (account_id, region, vpc_id)
);
CREATE INDEX aws_vpc_id_idx ON aws_vpc (vpc_id);

CREATE TABLE aws_subnet (
    account_id                  text NOT NULL,
    region                      text NOT NULL,
    subnet_id                   text NOT NULL,
    name                        text,
    vpc_id                      text,
    state                       text,
    cidr_block                  text,
    availability_zone           text,
    availability_zone_id        text,
    available_ip_address_count  bigint,
    default_for_az              boolean,
    map_public_ip_on_launch     boolean,
    tags                        jsonb NOT NULL DEFAULT '{}',
    raw                         jsonb NOT NULL,
    content_hash                text NOT NULL,
    first_seen_at               timestamptz NOT NULL,
    last_seen_at                timestamptz NOT NULL,
    deleted_at                  timestamptz,
    scan_id                     text NOT NULL,
    seq                         bigint NOT NULL,
    PRIMARY KEY (account_id, region, subnet_id)
);
CREATE INDEX aws_subnet_id_idx ON aws_subnet (subnet_id);
CREATE INDEX aws_subnet_vpc_idx ON aws_subnet (vpc_id);

CREATE TABLE aws_instance (
    account_id          text NOT NULL,
    region              text NOT NULL,
    instance_id         text NOT NULL,
    name                text,
    vpc_id              text,
    subnet_id           text,
    instance_type       text,
    state               text,
    image_id            text,
    private_ip_address  text,
    public_ip_address   text,
    availability_zone   text,
    architecture        text,
    platform            text,
    launch_time         timestamptz,
    tags                jsonb NOT NULL DEFAULT '{}',
    raw                 jsonb NOT NULL,
    content_hash        text NOT NULL,
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    deleted_at          timestamptz,
    scan_id             text NOT NULL,
    seq                 bigint NOT NULL,
    PRIMARY KEY (account_id, region, instance_id)
);
CREATE INDEX aws_instance_id_idx ON aws_instance (instance_id);
CREATE INDEX aws_instance_vpc_idx ON aws_instance (vpc_id);
CREATE INDEX aws_instance_subnet_idx ON aws_instance (subnet_id);
CREATE INDEX aws_instance_state_idx ON aws_instance (state);

-- Link tables are keyed by natural ids, so a link is right whichever side's event
-- arrives first. The declaring (owner) side's events rewrite its links. Both
-- indexes lead with a resource id, so a lookup by either side is an index lookup
-- whatever the planner's statistics say (account and region rarely narrow).
CREATE TABLE l_aws_region_to_vpc (
    account_id   text NOT NULL,
    region       text NOT NULL,
    region_name  text NOT NULL,
    vpc_id       text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (region_name, vpc_id, account_id, region)
);
CREATE INDEX l_aws_region_to_vpc_b_idx ON l_aws_region_to_vpc (vpc_id, account_id, region);

CREATE TABLE l_aws_vpc_to_subnet (
    account_id  text NOT NULL,
    region      text NOT NULL,
    vpc_id      text NOT NULL,
    subnet_id   text NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (vpc_id, subnet_id, account_id, region)
);
CREATE INDEX l_aws_vpc_to_subnet_b_idx ON l_aws_vpc_to_subnet (subnet_id, account_id, region);

CREATE TABLE l_aws_vpc_to_instance (
    account_id   text NOT NULL,
    region       text NOT NULL,
    vpc_id       text NOT NULL,
    instance_id  text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (vpc_id, instance_id, account_id, region)
);
CREATE INDEX l_aws_vpc_to_instance_b_idx ON l_aws_vpc_to_instance (instance_id, account_id, region);

CREATE TABLE l_aws_instance_to_subnet (
    account_id   text NOT NULL,
    region       text NOT NULL,
    instance_id  text NOT NULL,
    subnet_id    text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (instance_id, subnet_id, account_id, region)
);
CREATE INDEX l_aws_instance_to_subnet_b_idx ON l_aws_instance_to_subnet (subnet_id, account_id, region);
