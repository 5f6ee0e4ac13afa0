#!/usr/bin/python3
# Copyright (c) pgqueue contributors
#
# gw_group_kafka_python.py BOOTSTRAP GROUP
#	  python3-kafka (kafka-python 2.0.2, an implementation of the protocol
#	  independent of librdkafka) as a group consumer of the topic "orders"
#	  through the gateway, offering only its round-robin assignor, which
#	  librdkafka's default "range" consumers do not share: a Kafka broker
#	  would refuse such a group (INCONSISTENT_GROUP_PROTOCOL).  Prints
#	  "partition:offset value" per record, auto-commits, and runs until
#	  killed (or 120 s).

import sys
import time

from kafka import KafkaConsumer
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

c = KafkaConsumer('orders', bootstrap_servers=sys.argv[1], group_id=sys.argv[2],
                  auto_offset_reset='earliest', enable_auto_commit=True,
                  auto_commit_interval_ms=500, session_timeout_ms=6000,
                  heartbeat_interval_ms=500,
                  partition_assignment_strategy=[RoundRobinPartitionAssignor])
deadline = time.time() + 120
while time.time() < deadline:
    for records in c.poll(timeout_ms=200).values():
        for m in records:
            print('%d:%d %s' % (m.partition, m.offset, m.value.decode()), flush=True)
