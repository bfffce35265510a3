"""Seed a small demo fleet into moto: per region two VPCs, two subnets each, and
a few tagged instances. Usage: seed_demo.py ENDPOINT REGION [REGION ...]"""
import sys

import boto3


def main() -> None:
    endpoint, regions = sys.argv[1], sys.argv[2:]
    for region in regions:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint,
                           aws_access_key_id="demo", aws_secret_access_key="demo")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        for v, team in enumerate(["web", "data"]):
            vpc = ec2.create_vpc(CidrBlock=f"10.{v}.0.0/16")["Vpc"]["VpcId"]
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": f"{team}-{region}"},
                                                   {"Key": "team", "Value": team}])
            for s in range(2):
                subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{v}.{s}.0/24",
                                           AvailabilityZone=f"{region}{'ab'[s]}")["Subnet"]["SubnetId"]
                ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": f"{team}-{s}"}])
                count = 2 if s == 0 else 1
                ec2.run_instances(
                    ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro", SubnetId=subnet,
                    TagSpecifications=[{"ResourceType": "instance",
                                        "Tags": [{"Key": "Name", "Value": f"{team}-{s}"},
                                                 {"Key": "team", "Value": team}]}])
        print(f"[inventory] seeded demo fleet in {region}", file=sys.stderr)


if __name__ == "__main__":
    main()
