# Nomad job for koji_exporter with the docker driver: one instance, non-root, read-only
# root file system, health checked on /healthz like the Kubernetes Deployment. Build the
# image with docker/Dockerfile and push it where the clients can pull it. Store the
# database password and the CA certificate that verifies the database server in the Nomad
# variable that tasks of this job may read, then run the job:
#
#   nomad var put nomad/jobs/koji-exporter db_password=@/path/to/password db_ca=@/path/to/ca.pem
#   nomad job run deploy/nomad/koji_exporter.nomad.hcl
#
# The rule files are the default rules inside the image. Nomad registers the service in
# its own catalog; Prometheus finds it with nomad_sd_configs.

job "koji-exporter" {
  type = "service"

  group "koji-exporter" {
    # Two instances would double the load on the replica and give two sets of the same
    # series.
    count = 1

    network {
      port "metrics" {
        to = 19716
      }
    }

    service {
      name     = "koji-exporter"
      provider = "nomad"
      port     = "metrics"

      # /healthz answers while the rule scheduler runs, whether or not the database is
      # reachable, so a database outage never restarts the task.
      check {
        name     = "healthz"
        type     = "http"
        path     = "/healthz"
        interval = "30s"
        timeout  = "5s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "koji-exporter" {
      driver = "docker"
      # The user that docker/Dockerfile creates.
      user = "10001:10001"

      config {
        image           = "registry.example.org/koji_exporter:0.1.0"
        ports           = ["metrics"]
        readonly_rootfs = true
        cap_drop        = ["all"]
        security_opt    = ["no-new-privileges"]
        # Nomad mounts the task's local/ and secrets/ directories at /local and /secrets.
        entrypoint = ["/usr/local/bin/koji_exporter"]
        args       = ["--config.file=/local/koji_exporter.yaml"]
      }

      # A changed configuration is reloaded with SIGHUP, as `systemctl reload` does.
      template {
        destination   = "local/koji_exporter.yaml"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOF
          database:
            dsn: "host=koji-db-replica.example.org dbname=koji user=koji_exporter sslmode=verify-full sslrootcert=/local/db-ca.crt"
            password_file: /secrets/db_password
            max_connections: 2
          web:
            listen_address: ":19716"
          rule_files:
            - /usr/local/share/koji_exporter/queries/*.yaml
        EOF
      }

      # The exporter re-reads the password file on every reload.
      template {
        destination   = "secrets/db_password"
        # Readable by the task's user alone.
        uid           = 10001
        gid           = 10001
        perms         = "0400"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = "{{ with nomadVar \"nomad/jobs/koji-exporter\" }}{{ .db_password }}{{ end }}"
      }

      # A new CA certificate restarts the task.
      template {
        destination = "local/db-ca.crt"
        change_mode = "restart"
        data        = "{{ with nomadVar \"nomad/jobs/koji-exporter\" }}{{ .db_ca }}{{ end }}"
      }

      # NOTE: starting points, not measurements of a production Koji. With the demo data
      # of scripts/demo_data.sql (8,000 packages, 2,700 tags) the exporter peaked at 31 MiB
      # resident; memory grows with the number of series, one per tag and per package.
      # memory_max applies only where the cluster enables memory oversubscription.
      resources {
        cpu        = 100
        memory     = 128
        memory_max = 256
      }
    }
  }
}
