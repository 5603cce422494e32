from gsseg.cli.app import main

main()
